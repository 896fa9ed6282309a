use serde_json::{json, Value};

use super::*;
use crate::point::Payload;

/// A filter `depth` levels deep: each level nests the next in `must`.
fn nested(depth: usize) -> Filter {
    let mut f = Filter {
        must: vec![Condition::HasId(HasIdCondition {
            has_id: vec![PointId::Num(1)],
        })],
        ..Filter::default()
    };
    for _ in 1..depth {
        f = Filter {
            must: vec![Condition::Filter(Box::new(f))],
            ..Filter::default()
        };
    }
    f
}

#[test]
fn nesting_is_limited() {
    assert_eq!(nested(MAX_FILTER_DEPTH).validate(), Ok(()));
    let err = nested(MAX_FILTER_DEPTH + 1).validate().unwrap_err();
    assert_eq!(
        err,
        ValidationError::FilterTooDeep {
            limit: MAX_FILTER_DEPTH
        }
    );
    assert!(err.to_string().contains("limit of 32"), "{err}");
    // A `nested` condition's filter is a level down too.
    let mut f = json!({"must": [{"key": "a", "match": {"value": 1}}]});
    for _ in 1..=MAX_FILTER_DEPTH {
        f = json!({"must": [{"nested": {"key": "n", "filter": f}}]});
    }
    let f: Filter = serde_json::from_value(f).unwrap();
    assert!(matches!(
        f.validate(),
        Err(ValidationError::FilterTooDeep { .. })
    ));
}

fn payload(v: Value) -> Payload {
    v.as_object().cloned().unwrap()
}

fn filter(v: Value) -> Filter {
    let f: Filter = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
    f.validate().unwrap_or_else(|e| panic!("{v}: {e}"));
    // Every filter survives the wire.
    let back: Filter = crate::codec::decode(&crate::codec::encode(&f).unwrap()).unwrap();
    assert_eq!(back, f);
    f
}

/// Whether `{"must": [cond]}` passes the point with id 1 and `p`.
fn holds(cond: Value, p: &Value) -> bool {
    filter(json!({"must": [cond]})).matches(PointId::Num(1), Some(&payload(p.clone())))
}

#[test]
fn match_value_any_except() {
    let p = json!({"color": "red", "n": 3, "f": 3.0, "ok": true, "tags": ["a", "b"], "nil": null});
    let m = |key: &str, m: Value| holds(json!({"key": key, "match": m}), &p);
    assert!(m("color", json!({"value": "red"})));
    assert!(!m("color", json!({"value": "blue"})));
    assert!(m("n", json!({"value": 3})));
    assert!(!m("f", json!({"value": 3})), "a float is not an integer");
    assert!(m("ok", json!({"value": true})));
    assert!(m("tags", json!({"value": "b"})));
    assert!(m("color", json!({"any": ["x", "red"]})));
    assert!(!m("color", json!({"except": ["red"]})));
    assert!(m("color", json!({"except": ["blue"]})));
    // Absence and null are not "a value outside the list".
    assert!(!m("missing", json!({"except": ["red"]})));
    assert!(!m("nil", json!({"except": ["red"]})));
    assert!(
        !filter(json!({"must": [{"key": "missing", "match": {"value": "red"}}]}))
            .matches(PointId::Num(1), None)
    );
}

#[test]
fn full_text_matches_words_not_substrings() {
    let p = json!({"bio": "Rust, distributed systems & vector-search; since 2019", "n": 1});
    let m = |m: Value| holds(json!({"key": "bio", "match": m}), &p);
    assert!(m(json!({"text": "rust"})));
    assert!(
        m(json!({"text": "vector SYSTEMS"})),
        "words in any order, any case"
    );
    assert!(!m(json!({"text": "rust python"})), "every word needed");
    assert!(!m(json!({"text": "dist"})), "a word, not a substring");
    assert!(!m(json!({"text": "  "})), "no words match nothing");
    assert!(m(json!({"text_any": "python 2019"})));
    assert!(!m(json!({"text_any": "python go"})));
    assert!(m(json!({"phrase": "distributed systems"})));
    assert!(m(json!({"phrase": "vector search since"})));
    assert!(!m(json!({"phrase": "systems distributed"})), "order counts");
    assert!(!m(json!({"phrase": "rust systems"})), "adjacent words only");
    assert!(
        !holds(json!({"key": "n", "match": {"text": "1"}}), &p),
        "strings only"
    );
    assert_eq!(tokenize("Hello, wörld_42"), ["hello", "wörld", "42"]);
}

#[test]
fn datetime_ranges() {
    let p = json!({"at": "2024-05-01T12:30:00Z", "local": "2024-05-01 14:30:00+02:00",
                   "day": "2024-05-01", "bad": "yesterday", "n": 5});
    let r = |key: &str, r: Value| holds(json!({"key": key, "range": r}), &p);
    assert!(r("at", json!({"gte": "2024-05-01T12:30:00Z"})));
    assert!(!r("at", json!({"gt": "2024-05-01T12:30:00Z"})));
    assert!(r(
        "at",
        json!({"gt": "2024-05-01T12:29:59.999999Z", "lt": "2024-05-02"})
    ));
    assert!(r(
        "local",
        json!({"gte": "2024-05-01T12:30:00Z", "lte": "2024-05-01T12:30:00Z"})
    ));
    assert!(!r("at", json!({"lt": "2024-05-01T13:30:00+01"})));
    assert!(r("at", json!({"lt": "2024-05-01T14:30:01+01:00"})));
    assert!(r("day", json!({"lt": "2024-05-01T00:00:01"})));
    assert!(
        !r("bad", json!({"gt": "1970-01-01"})),
        "not a datetime: no match"
    );
    assert!(!r("n", json!({"gt": "1970-01-01"})));
    // A numeric range still reads numbers only.
    assert!(r("n", json!({"gt": 4})));
    assert!(!r("at", json!({"gt": 4})));
    for bad in [
        "2024-13-01",
        "2024-02-30",
        "2024-05-01T25:00",
        "2024-05-01T12:00Z",
        "soon",
    ] {
        assert!(
            serde_json::from_value::<Filter>(json!({"must": [{"key": "a", "range": {"gt": bad}}]}))
                .is_err(),
            "{bad}"
        );
    }
    assert_eq!(parse_datetime("1970-01-01"), Some(0));
    assert_eq!(parse_datetime("1969-12-31T23:59:59.5Z"), Some(-500_000));
    assert_eq!(
        parse_datetime("2000-03-01 00:00:00.123456789 UTC"),
        Some(951_868_800_123_456)
    );
    assert_eq!(
        parse_datetime("2000-03-01T01:00:00+0100"),
        parse_datetime("2000-03-01")
    );
}

#[test]
fn geo_conditions() {
    // Berlin, and London ~930 km away.
    let p = json!({"loc": {"lon": 13.405, "lat": 52.52}, "many": [{"lon": 0.0, "lat": 0.0},
                   {"lon": -0.1278, "lat": 51.5074}], "bad": {"lon": "x", "lat": 1}});
    let g = |key: &str, c: Value| {
        let mut cond = c.as_object().cloned().unwrap();
        cond.insert("key".into(), json!(key));
        holds(Value::Object(cond), &p)
    };
    let london = json!({"lon": -0.1278, "lat": 51.5074});
    assert!(g(
        "loc",
        json!({"geo_radius": {"center": london, "radius": 940_000.0}})
    ));
    assert!(!g(
        "loc",
        json!({"geo_radius": {"center": london, "radius": 920_000.0}})
    ));
    assert!(
        g(
            "many",
            json!({"geo_radius": {"center": london, "radius": 1.0}})
        ),
        "any element"
    );
    assert!(!g(
        "bad",
        json!({"geo_radius": {"center": london, "radius": 1e9}})
    ));
    let bbox = |tl: (f64, f64), br: (f64, f64)| {
        json!({"geo_bounding_box": {"top_left": {"lon": tl.0, "lat": tl.1},
                                    "bottom_right": {"lon": br.0, "lat": br.1}}})
    };
    assert!(g("loc", bbox((13.0, 53.0), (14.0, 52.0))));
    assert!(!g("loc", bbox((14.0, 53.0), (15.0, 52.0))));
    assert!(
        g("loc", bbox((170.0, 53.0), (14.0, 52.0))),
        "across the antimeridian"
    );
    let ring = |pts: &[(f64, f64)]| json!({"points": pts.iter().map(|(lon, lat)| json!({"lon": lon, "lat": lat})).collect::<Vec<_>>()});
    let square = ring(&[
        (13.0, 52.0),
        (14.0, 52.0),
        (14.0, 53.0),
        (13.0, 53.0),
        (13.0, 52.0),
    ]);
    let hole = ring(&[
        (13.3, 52.4),
        (13.5, 52.4),
        (13.5, 52.6),
        (13.3, 52.6),
        (13.3, 52.4),
    ]);
    assert!(g("loc", json!({"geo_polygon": {"exterior": square}})));
    assert!(!g(
        "loc",
        json!({"geo_polygon": {"exterior": square, "interiors": [hole]}})
    ));
    let edge = ring(&[
        (13.405, 52.0),
        (14.0, 52.0),
        (14.0, 53.0),
        (13.405, 53.0),
        (13.405, 52.0),
    ]);
    assert!(
        !g("loc", json!({"geo_polygon": {"exterior": edge}})),
        "the edge is outside"
    );
    for bad in [
        json!({"geo_polygon": {"exterior": ring(&[(0.0, 0.0), (1.0, 0.0), (0.0, 0.0)])}}),
        json!({"geo_polygon": {"exterior": ring(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])}}),
        json!({"geo_radius": {"center": {"lon": 0, "lat": 91}, "radius": 1.0}}),
        json!({"geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": -1.0}}),
    ] {
        let mut cond = bad.as_object().cloned().unwrap();
        cond.insert("key".into(), json!("loc"));
        let f: Filter = serde_json::from_value(json!({"must": [cond]})).unwrap();
        assert!(f.validate().is_err(), "{bad}");
    }
}

#[test]
fn values_count_is_empty_is_null() {
    let p = json!({"tags": ["a", "b", "c"], "one": "x", "empty": [], "nil": null,
                   "nils": [null, 1], "obj": {"in": [1, 2]}});
    let vc = |key: &str, c: Value| holds(json!({"key": key, "values_count": c}), &p);
    assert!(vc("tags", json!({"gte": 3, "lt": 4})));
    assert!(!vc("tags", json!({"gt": 3})));
    assert!(vc("one", json!({"lte": 1, "gte": 1})));
    assert!(vc("missing", json!({"lt": 1})), "a missing key counts 0");
    assert!(vc("nil", json!({"lt": 1})));
    assert!(vc("obj.in", json!({"gte": 2})));
    let empty = |key: &str| holds(json!({"is_empty": {"key": key}}), &p);
    let null = |key: &str| holds(json!({"is_null": {"key": key}}), &p);
    assert!(empty("missing") && empty("empty") && empty("nil"));
    assert!(!empty("tags") && !empty("one") && !empty("nils"));
    assert!(null("nil") && null("nils"));
    assert!(!null("missing") && !null("empty") && !null("one"));
    // The field-condition forms.
    assert!(holds(json!({"key": "tags", "is_empty": false}), &p));
    assert!(holds(json!({"key": "nil", "is_null": true}), &p));
    assert!(!holds(json!({"key": "one", "is_null": true}), &p));
}

#[test]
fn nested_holds_within_one_element() {
    let p = json!({"diet": [{"food": "meat", "likes": false}, {"food": "veg", "likes": true}],
                   "not_array": {"food": "meat", "likes": true}});
    let both = |key: &str| {
        json!({"nested": {"key": key, "filter": {"must": [
            {"key": "food", "match": {"value": "meat"}},
            {"key": "likes", "match": {"value": true}}]}}})
    };
    assert!(!holds(both("diet"), &p), "no one element has both");
    assert!(!holds(both("not_array"), &p), "only array elements");
    // The flat form sees the values of all elements together.
    assert!(holds(
        json!({"must": [{"key": "diet[].food", "match": {"value": "meat"}},
                                   {"key": "diet[].likes", "match": {"value": true}}]}),
        &p
    ));
    let veg = json!({"nested": {"key": "diet[]", "filter": {"must": [
        {"key": "food", "match": {"value": "veg"}}, {"key": "likes", "match": {"value": true}}]}}});
    assert!(holds(veg, &p));
    let must_not = json!({"nested": {"key": "diet", "filter": {"must_not": [
        {"key": "likes", "match": {"value": true}}]}}});
    assert!(holds(must_not, &p), "the first element does not like");
    let id = json!({"nested": {"key": "diet", "filter": {"must": [{"has_id": [1]}]}}});
    assert!(!holds(id, &p), "an element has no id");
}

#[test]
fn min_should_counts_conditions() {
    let p = json!({"a": 1, "b": 2, "c": 3});
    let ms = |min_count: usize| {
        filter(
            json!({"min_should": {"min_count": min_count, "conditions": [
            {"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"value": 2}},
            {"key": "c", "match": {"value": 0}}]}}),
        )
        .matches(PointId::Num(1), Some(&payload(p.clone())))
    };
    assert!(ms(1) && ms(2));
    assert!(!ms(3));
    let zero: Filter =
        serde_json::from_value(json!({"min_should": {"min_count": 0, "conditions": []}})).unwrap();
    assert!(zero.validate().is_err());
}

#[test]
fn range_nested_and_has_id() {
    let p = payload(json!({"a": {"b": [{"c": 5.5}, {"c": 1}]}, "price": 10, "yes": true}));
    let id = PointId::Num(7);
    assert!(filter(json!({"must": [{"key": "a.b.c", "range": {"gt": 5}}]})).matches(id, Some(&p)));
    assert!(
        filter(json!({"must": [{"key": "a.b[].c", "range": {"gt": 5}}]})).matches(id, Some(&p))
    );
    assert!(!filter(json!({"must": [{"key": "a.b.c", "range": {"gt": 6}}]})).matches(id, Some(&p)));
    assert!(
        filter(json!({"must": [{"key": "price", "range": {"gte": 10, "lte": 10}}]}))
            .matches(id, Some(&p))
    );
    assert!(
        !filter(json!({"must": [{"key": "price", "range": {"lt": 10}}]})).matches(id, Some(&p))
    );
    assert!(!filter(json!({"must": [{"key": "yes", "range": {"gte": 0}}]})).matches(id, Some(&p)));
    assert!(filter(json!({"must": [{"has_id": [7, 8]}]})).matches(id, Some(&p)));
    assert!(!filter(json!({"must_not": [{"has_id": [7]}]})).matches(id, Some(&p)));
    let inner =
        json!({"should": [{"has_id": [1]}, {"must": [{"key": "price", "match": {"value": 10}}]}]});
    assert!(filter(inner).matches(id, Some(&p)));
    assert!(!filter(json!({"should": [{"has_id": [1]}]})).matches(id, Some(&p)));
    assert!(Filter::default().matches(id, None));
}

#[test]
fn refuses_malformed_filters() {
    let bad = [
        json!({"must": [{"key": "a"}]}),
        json!({"must": [{"key": "a", "range": {}}]}),
        json!({"must": [{"key": "", "match": {"value": 1}}]}),
        json!({"must": [{"key": "a..b", "match": {"value": 1}}]}),
        json!({"must": [{"key": "[]", "match": {"value": 1}}]}),
        json!({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}),
        json!({"must": [{"key": "a", "is_empty": true, "values_count": {"gt": 1}}]}),
        json!({"must": [{"is_empty": {"key": ""}}]}),
        json!({"must": [{"nested": {"key": "a..b", "filter": {}}}]}),
        json!({"must": [{"nested": {"key": "a", "filter": {"must": [{"key": "x"}]}}}]}),
        json!({"min_should": {"conditions": [{"key": "a"}], "min_count": 1}}),
    ];
    for b in bad {
        let parsed: Result<Filter, _> = serde_json::from_value(b.clone());
        let refused = match parsed {
            Err(_) => true,
            Ok(f) => f.validate().is_err(),
        };
        assert!(refused, "accepted {b}");
    }
    assert!(serde_json::from_value::<Filter>(json!({"mustt": []})).is_err());
    assert!(serde_json::from_value::<Filter>(
        json!({"must": [{"key": "a", "match": {"valu": 1}}]})
    )
    .is_err());
}
