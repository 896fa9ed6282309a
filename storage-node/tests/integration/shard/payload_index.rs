//! The index-narrowed filter gives exactly what the scan gives, for random
//! payloads, random filters, in-place payload changes and tombstones.

use proptest::prelude::*;
use protocol::filter::Filter;
use protocol::{
    Distance, Payload, PayloadIndexSpec, PayloadIndexes, PayloadSchemaType, PointId, SeqNo,
};
use serde_json::{json, Value};

use storage_node::segment::Segment;

fn specs() -> PayloadIndexes {
    [
        ("kw", PayloadSchemaType::Keyword),
        ("n", PayloadSchemaType::Integer),
        ("f", PayloadSchemaType::Float),
        ("b", PayloadSchemaType::Bool),
        ("t", PayloadSchemaType::Datetime),
        ("g", PayloadSchemaType::Geo),
        ("txt", PayloadSchemaType::Text),
        ("u", PayloadSchemaType::Uuid),
    ]
    .into_iter()
    .map(|(k, t)| {
        let spec = PayloadIndexSpec {
            data_type: t,
            params: None,
        };
        (k.to_string(), spec)
    })
    .collect()
}

const WORDS: [&str; 5] = ["alpha", "Beta", "gamma", "delta", "eps"];
const KWS: [&str; 4] = ["a", "b", "A", "c"];
const UUIDS: [&str; 2] = [
    "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
    "5C56C793-69F3-4FBF-87E6-C4BF54C28C26",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0..4usize).prop_map(|i| json!(KWS[i])),
        (-3i64..4).prop_map(|n| json!(n)),
        (-3.0f64..3.0).prop_map(|x| json!((x * 4.0).round() / 4.0)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
        (0u32..48).prop_map(|h| json!(format!("2024-05-0{}T{:02}:00:00Z", 1 + h / 24, h % 24))),
        ((-2.0f64..2.0), (-2.0f64..2.0)).prop_map(|(lat, lon)| json!({"lat": lat, "lon": lon})),
        proptest::collection::vec(0..5usize, 0..4)
            .prop_map(|ws| { json!(ws.iter().map(|i| WORDS[*i]).collect::<Vec<_>>().join(" ")) }),
        (0..2usize).prop_map(|i| json!(UUIDS[i])),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => scalar(),
        1 => proptest::collection::vec(scalar(), 0..3).prop_map(Value::Array),
    ]
}

fn payload() -> impl Strategy<Value = Option<Payload>> {
    let keys = ["kw", "n", "f", "b", "t", "g", "txt", "u"];
    proptest::option::weighted(
        0.9,
        proptest::collection::vec(proptest::option::of(field_value()), keys.len()).prop_map(
            move |vals| {
                keys.iter()
                    .zip(vals)
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect::<Payload>()
            },
        ),
    )
}

fn condition() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("kw"),
        Just("n"),
        Just("f"),
        Just("b"),
        Just("t"),
        Just("g"),
        Just("txt"),
        Just("u")
    ];
    let point =
        ((-2.0f64..2.0), (-2.0f64..2.0)).prop_map(|(lat, lon)| json!({"lat": lat, "lon": lon}));
    let time =
        (0u32..48).prop_map(|h| json!(format!("2024-05-0{}T{:02}:30:00Z", 1 + h / 24, h % 24)));
    let word = (0..5usize).prop_map(|i| WORDS[i].to_lowercase());
    let body = prop_oneof![
        scalar().prop_filter("a match value", |v| v.is_string() || v.is_i64() || v.is_boolean())
            .prop_map(|v| json!({"match": {"value": v}})),
        proptest::collection::vec((0..4usize).prop_map(|i| json!(KWS[i])), 1..3)
            .prop_map(|a| json!({"match": {"any": a}})),
        proptest::collection::vec((-3i64..4).prop_map(|n| json!(n)), 1..3)
            .prop_map(|a| json!({"match": {"any": a}})),
        (0..2usize).prop_map(|i| json!({"match": {"value": UUIDS[i]}})),
        (0..4usize).prop_map(|i| json!({"match": {"except": [KWS[i]]}})),
        ((-3.0f64..3.0), (0.0f64..3.0)).prop_map(|(lo, w)| json!({"range": {"gte": lo, "lt": lo + w}})),
        (-3.0f64..3.0).prop_map(|x| json!({"range": {"gt": x}})),
        (time.clone(), time).prop_map(|(a, b)| json!({"range": {"gt": a, "lte": b}})),
        (point.clone(), 0.0f64..200_000.0).prop_map(|(c, r)| json!({"geo_radius": {"center": c, "radius": r}})),
        ((-2.0f64..2.0), (-2.0f64..2.0), 0.0f64..2.0).prop_map(|(lat, lon, w)| json!({"geo_bounding_box": {
            "top_left": {"lat": lat + w, "lon": lon}, "bottom_right": {"lat": lat, "lon": lon + w}}})),
        ((-2.0f64..1.0), (-2.0f64..1.0)).prop_map(|(lat, lon)| json!({"geo_polygon": {"exterior": {"points": [
            {"lat": lat, "lon": lon}, {"lat": lat + 1.0, "lon": lon}, {"lat": lat + 1.0, "lon": lon + 1.0},
            {"lat": lat, "lon": lon}]}}})),
        proptest::collection::vec(word.clone(), 0..3).prop_map(|w| json!({"match": {"text": w.join(" ")}})),
        proptest::collection::vec(word.clone(), 1..3).prop_map(|w| json!({"match": {"phrase": w.join(" ")}})),
        proptest::collection::vec(word, 1..3).prop_map(|w| json!({"match": {"text_any": w.join(" ")}})),
        (0usize..3).prop_map(|n| json!({"values_count": {"gte": n}})),
    ];
    (key, body).prop_map(|(k, b)| {
        let mut c = b.as_object().cloned().unwrap_or_default();
        c.insert("key".into(), json!(k));
        Value::Object(c)
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    let conds = || proptest::collection::vec(condition(), 0..3);
    (conds(), conds(), conds(), conds())
        .prop_map(|(must, should, must_not, inner)| {
            let mut must = must;
            if !inner.is_empty() {
                must.push(json!({"should": inner}));
            }
            json!({"must": must, "should": should, "must_not": must_not})
        })
        .prop_filter_map("a valid filter", |v| {
            let f: Filter = serde_json::from_value(v).ok()?;
            f.validate().ok().map(|_| f)
        })
}

fn segment(payloads: &[Option<Payload>]) -> Segment {
    let mut seg = Segment::new_growing(0, 2, Distance::Dot, SeqNo(0)).unwrap();
    for (i, p) in payloads.iter().enumerate() {
        seg.push(PointId::Num(i as u64), &[1.0, 0.0], p.clone(), SeqNo(1))
            .unwrap();
    }
    seg
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn indexed_matching_equals_the_scan(
        first in proptest::collection::vec(payload(), 0..40),
        later in proptest::collection::vec(payload(), 0..10),
        changes in proptest::collection::vec((0usize..50, payload()), 0..8),
        dead in proptest::collection::vec(0usize..50, 0..6),
        filters in proptest::collection::vec(filter(), 1..6),
    ) {
        let specs = specs();
        let none = PayloadIndexes::new();
        let mut seg = segment(&first);
        // Built now, then kept up to date by pushes and in-place changes.
        let _ = seg.matching(&filters[0], &specs);
        for (i, p) in later.iter().enumerate() {
            seg.push(PointId::Num((first.len() + i) as u64), &[0.0, 1.0], p.clone(), SeqNo(2)).unwrap();
        }
        for (off, p) in &changes {
            if *off < seg.len() {
                seg.payloads[*off] = p.clone();
                seg.payload_index.note(*off, seg.payloads[*off].as_ref());
            }
        }
        for off in dead {
            seg.alive.set(off, false);
        }
        for f in &filters {
            let scan = seg.matching(f, &none);
            let indexed = seg.matching(f, &specs);
            prop_assert_eq!(indexed.iter_ones().collect::<Vec<_>>(), scan.iter_ones().collect::<Vec<_>>(), "{:?}", f);
        }
    }
}

/// The index narrows: a selective keyword filter tests only its
/// candidates (checked through the candidate set itself).
#[test]
fn a_keyword_index_leaves_only_its_postings() {
    let payloads: Vec<Option<Payload>> = (0..100)
        .map(|i| {
            json!({"kw": if i % 10 == 0 { "a" } else { "b" }})
                .as_object()
                .cloned()
        })
        .collect();
    let seg = segment(&payloads);
    let f: Filter =
        serde_json::from_value(json!({"must": [{"key": "kw", "match": {"value": "a"}}]})).unwrap();
    let idx = seg.payload_index.get(&specs(), &seg.payloads).unwrap();
    let c = idx.candidates(&f).unwrap();
    assert_eq!(c.count_ones(), 10);
    assert_eq!(idx.points_with_values("kw", &seg.alive), 100);
    // A condition the index cannot answer leaves nothing narrowed.
    let except: Filter =
        serde_json::from_value(json!({"must": [{"key": "kw", "match": {"except": ["a"]}}]}))
            .unwrap();
    assert!(idx.candidates(&except).is_none());
}
