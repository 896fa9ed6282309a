//! Geo conditions on payload values shaped `{"lon": .., "lat": ..}`, in
//! degrees. Distances are great-circle (haversine) on a sphere of the mean
//! Earth radius, in meters; bounding boxes and polygons treat lon/lat as
//! plane coordinates, as Qdrant does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Mean Earth radius in meters (IUGG), the figure Qdrant uses.
const MEAN_EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    pub lon: f64,
    pub lat: f64,
}

/// Points strictly inside the circle of `radius` meters around `center`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRadius {
    pub center: GeoPoint,
    pub radius: f64,
}

/// Points strictly inside the box; when `top_left.lon` is east of
/// `bottom_right.lon` the box crosses the antimeridian.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoBoundingBox {
    pub top_left: GeoPoint,
    pub bottom_right: GeoPoint,
}

/// Points inside `exterior` and outside every interior ring (a hole); a
/// point on any ring's edge is outside. Each ring is closed: at least 4
/// points, the last equal to the first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPolygon {
    pub exterior: GeoLineString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interiors: Option<Vec<GeoLineString>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoLineString {
    pub points: Vec<GeoPoint>,
}

impl GeoPoint {
    fn validate(&self) -> Result<(), String> {
        if !(-180.0..=180.0).contains(&self.lon) || !(-90.0..=90.0).contains(&self.lat) {
            return Err(format!(
                "geo point lon {} / lat {} is outside [-180, 180] / [-90, 90]",
                self.lon, self.lat
            ));
        }
        Ok(())
    }
}

impl GeoRadius {
    pub(super) fn validate(&self) -> Result<(), String> {
        self.center.validate()?;
        if !(self.radius.is_finite() && self.radius >= 0.0) {
            return Err(format!(
                "geo_radius.radius {} is not a distance",
                self.radius
            ));
        }
        Ok(())
    }

    pub(super) fn contains(&self, p: GeoPoint) -> bool {
        haversine_m(self.center, p) < self.radius
    }
}

impl GeoBoundingBox {
    pub(super) fn validate(&self) -> Result<(), String> {
        self.top_left.validate()?;
        self.bottom_right.validate()
    }

    pub(super) fn contains(&self, p: GeoPoint) -> bool {
        let (tl, br) = (self.top_left, self.bottom_right);
        let lon_ok = if tl.lon > br.lon {
            p.lon > tl.lon || p.lon < br.lon
        } else {
            tl.lon < p.lon && p.lon < br.lon
        };
        lon_ok && tl.lat > p.lat && p.lat > br.lat
    }
}

impl GeoPolygon {
    pub(super) fn validate(&self) -> Result<(), String> {
        let rings = std::iter::once(&self.exterior).chain(self.interiors.iter().flatten());
        for ring in rings {
            ring.points.iter().try_for_each(GeoPoint::validate)?;
            if ring.points.len() < 4 || ring.points.first() != ring.points.last() {
                return Err(
                    "each geo_polygon ring needs at least 4 points, the last equal to the first"
                        .into(),
                );
            }
        }
        Ok(())
    }

    pub(super) fn contains(&self, p: GeoPoint) -> bool {
        in_ring(p, &self.exterior.points, false)
            && !self
                .interiors
                .iter()
                .flatten()
                .any(|hole| in_ring(p, &hole.points, true))
    }
}

/// A payload value as a geo point: an object with finite numeric `lat`
/// and `lon` (other keys allowed).
pub fn point_of(v: &Value) -> Option<GeoPoint> {
    let o = v.as_object()?;
    let lon = o.get("lon")?.as_f64()?;
    let lat = o.get("lat")?.as_f64()?;
    (lon.is_finite() && lat.is_finite()).then_some(GeoPoint { lon, lat })
}

fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * MEAN_EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Ray casting over the ring (the closing point dropped), with x = lat and
/// y = lon. A point on the boundary is inside when `boundary_inside`.
fn in_ring(p: GeoPoint, ring: &[GeoPoint], boundary_inside: bool) -> bool {
    let ring = match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    };
    let (px, py) = (p.lat, p.lon);
    let mut inside = false;
    let mut j = ring.len().wrapping_sub(1);
    for (i, vi) in ring.iter().enumerate() {
        let vj = ring[j];
        let (xi, yi, xj, yj) = (vi.lat, vi.lon, vj.lat, vj.lon);
        let on_boundary = py * (xi - xj) + yi * (xj - px) + yj * (px - xi) == 0.0
            && (xi - px) * (xj - px) <= 0.0
            && (yi - py) * (yj - py) <= 0.0;
        if on_boundary {
            return boundary_inside;
        }
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}
