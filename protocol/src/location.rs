//! Visit-location truth: how far a visit's fix was from its outlet's reference location.
//!
//! The distance is geodesic (WGS84, `geo`). The band is accuracy-aware: a fix whose accuracy
//! circle reaches into a band counts for that band, so an honest but imprecise indoor fix is
//! not flagged as far away, while the raw distance and the accuracy are kept beside the band.
use geo::{Distance, Geodesic, Point};

/// Distance bands a visit is classified into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Band {
    /// Within `near_m` of the reference location.
    Within,
    /// Beyond `near_m`, within `mid_m`.
    Near,
    /// Beyond `mid_m`, within `far_m`.
    Beyond,
    /// Beyond `far_m` (kilometres away).
    FarBeyond,
    /// The visit has no fix.
    NoFix,
    /// The outlet has no reference location.
    NoReference,
}

impl Band {
    /// Every band, nearest first, then the two without a distance.
    pub const ALL: [Band; 6] = [
        Band::Within,
        Band::Near,
        Band::Beyond,
        Band::FarBeyond,
        Band::NoFix,
        Band::NoReference,
    ];

    /// Stable name, stored in the database and used in URLs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Within => "within",
            Band::Near => "near",
            Band::Beyond => "beyond",
            Band::FarBeyond => "far_beyond",
            Band::NoFix => "no_fix",
            Band::NoReference => "no_reference",
        }
    }

    /// Parses [`Band::as_str`].
    pub fn parse(s: &str) -> Option<Band> {
        Band::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// Band thresholds in metres; configurable per distributor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    pub near_m: u32,
    pub mid_m: u32,
    pub far_m: u32,
}

impl Default for Bands {
    fn default() -> Self {
        Bands {
            near_m: 50,
            mid_m: 150,
            far_m: 1000,
        }
    }
}

/// The accuracy credited to a fix is capped: a 5 km "accuracy" must not excuse anything.
/// Honest indoor fixes report 100-250 m with a true error of the same size (a lower cap of
/// 100 m pushed such visits into `beyond`); `docs/field-truth.md` gives the figures.
pub const MAX_CREDITED_ACCURACY_M: f64 = 250.0;

/// Degrees * 10^7 to degrees.
pub fn e7_to_deg(v: i32) -> f64 {
    v as f64 / 1e7
}

/// Degrees to degrees * 10^7 (rounded).
pub fn deg_to_e7(v: f64) -> i32 {
    (v * 1e7).round() as i32
}

/// Degrees * 10^7 as decimal text with all 7 decimals ("50.4501234", "-0.0000010"), exact:
/// the text read back with 7 decimals gives the same integer.
pub fn e7_text(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:07}", a / 10_000_000, a % 10_000_000)
}

/// Geodesic distance in metres between two points given in degrees * 10^7.
pub fn distance_m(lat_a: i32, lon_a: i32, lat_b: i32, lon_b: i32) -> f64 {
    let a = Point::new(e7_to_deg(lon_a), e7_to_deg(lat_a));
    let b = Point::new(e7_to_deg(lon_b), e7_to_deg(lat_b));
    Geodesic.distance(a, b)
}

/// What the classification says about one visit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classification {
    pub band: Band,
    /// Raw geodesic distance of the fix that decided the band, when both a fix and a
    /// reference exist.
    pub distance_m: Option<f64>,
    /// The accuracy that fix claimed.
    pub accuracy_m: Option<f64>,
}

/// A fix as the classifier needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub accuracy_m: f64,
}

/// Classifies the best of a set of fixes (the one with the smallest accuracy-adjusted
/// distance) against the outlet's reference location.
pub fn classify(fixes: &[Fix], reference: Option<(i32, i32)>, bands: Bands) -> Classification {
    let Some((rlat, rlon)) = reference else {
        return Classification {
            band: if fixes.is_empty() {
                Band::NoFix
            } else {
                Band::NoReference
            },
            distance_m: None,
            accuracy_m: None,
        };
    };
    let best = fixes
        .iter()
        .map(|f| {
            let d = distance_m(f.lat_e7, f.lon_e7, rlat, rlon);
            let credited = f.accuracy_m.clamp(0.0, MAX_CREDITED_ACCURACY_M);
            (d, (d - credited).max(0.0), f.accuracy_m)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let Some((raw, adjusted, accuracy)) = best else {
        return Classification {
            band: Band::NoFix,
            distance_m: None,
            accuracy_m: None,
        };
    };
    Classification {
        band: band_of(adjusted, bands),
        distance_m: Some(raw),
        accuracy_m: Some(accuracy),
    }
}

fn band_of(adjusted: f64, bands: Bands) -> Band {
    if adjusted <= bands.near_m as f64 {
        Band::Within
    } else if adjusted <= bands.mid_m as f64 {
        Band::Near
    } else if adjusted <= bands.far_m as f64 {
        Band::Beyond
    } else {
        Band::FarBeyond
    }
}

/// How near a band is (smaller is nearer); the bands without a distance come last.
fn rank(b: Band) -> u8 {
    Band::ALL.iter().position(|x| *x == b).unwrap_or(0) as u8
}

/// Classifies a visit: each phase (the start's fixes, the end's fixes) by its best fix, and
/// the visit by the farther of the two phases that have fixes. So one good fix at the end
/// cannot clear a start made far away (nor the other way round), while within a phase an
/// honest noisy fix is outweighed by a better one.
pub fn classify_visit(
    start: &[Fix],
    end: &[Fix],
    reference: Option<(i32, i32)>,
    bands: Bands,
) -> Classification {
    let phases = [start, end]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| classify(p, reference, bands));
    phases
        .max_by(|a, b| {
            rank(a.band).cmp(&rank(b.band)).then(
                a.distance_m
                    .unwrap_or(0.0)
                    .total_cmp(&b.distance_m.unwrap_or(0.0)),
            )
        })
        .unwrap_or_else(|| classify(&[], reference, bands))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e7_text_is_exact_with_seven_decimals() {
        assert_eq!(e7_text(504_501_234), "50.4501234");
        assert_eq!(e7_text(-10), "-0.0000010");
        assert_eq!(e7_text(0), "0.0000000");
        assert_eq!(e7_text(-1_800_000_000), "-180.0000000");
    }

    // Kyiv, Maidan Nezalezhnosti.
    const LAT: i32 = 504_501_000;
    const LON: i32 = 305_234_000;

    fn fix_north(metres: f64, accuracy_m: f64) -> Fix {
        // One degree of latitude is about 111.2 km.
        Fix {
            lat_e7: LAT + (metres / 111_195.0 * 1e7) as i32,
            lon_e7: LON,
            accuracy_m,
        }
    }

    #[test]
    fn distances_fall_into_the_expected_bands() {
        let b = Bands::default();
        let r = Some((LAT, LON));
        assert_eq!(classify(&[fix_north(10.0, 5.0)], r, b).band, Band::Within);
        assert_eq!(classify(&[fix_north(120.0, 5.0)], r, b).band, Band::Near);
        assert_eq!(classify(&[fix_north(600.0, 5.0)], r, b).band, Band::Beyond);
        assert_eq!(
            classify(&[fix_north(5000.0, 5.0)], r, b).band,
            Band::FarBeyond
        );
        assert_eq!(classify(&[], r, b).band, Band::NoFix);
        assert_eq!(
            classify(&[fix_north(1.0, 1.0)], None, b).band,
            Band::NoReference
        );
    }

    #[test]
    fn an_inaccurate_fix_is_credited_its_accuracy_up_to_a_cap() {
        let b = Bands::default();
        let r = Some((LAT, LON));
        // 90 m away with 60 m accuracy: the circle reaches within 50 m.
        assert_eq!(classify(&[fix_north(90.0, 60.0)], r, b).band, Band::Within);
        // 3 km away with a 5 km "accuracy": the credit is capped, still far beyond.
        let c = classify(&[fix_north(3000.0, 5000.0)], r, b);
        assert_eq!(c.band, Band::FarBeyond);
        assert!((c.distance_m.unwrap() - 3000.0).abs() < 5.0);
        assert_eq!(c.accuracy_m, Some(5000.0));
        // An honest indoor fix 280 m off with 240 m accuracy is within, not beyond; the cap
        // credits at most 250 m, so 420 m off with 400 m "accuracy" is beyond.
        assert_eq!(
            classify(&[fix_north(280.0, 240.0)], r, b).band,
            Band::Within
        );
        assert_eq!(
            classify(&[fix_north(420.0, 400.0)], r, b).band,
            Band::Beyond
        );
    }

    #[test]
    fn a_visit_is_as_far_as_its_farther_phase_and_reports_that_fix() {
        let b = Bands::default();
        let r = Some((LAT, LON));
        // Started 5 km away, ended on the spot: the start is not rewritten by the end.
        let c = classify_visit(&[fix_north(5000.0, 12.0)], &[fix_north(3.0, 4.0)], r, b);
        assert_eq!(c.band, Band::FarBeyond);
        assert!((c.distance_m.unwrap() - 5000.0).abs() < 5.0);
        assert_eq!(c.accuracy_m, Some(12.0), "the deciding fix's accuracy");
        // Within a phase the best fix still decides: an honest outlier is outweighed.
        let c = classify_visit(
            &[fix_north(700.0, 30.0), fix_north(15.0, 6.0)],
            &[fix_north(20.0, 8.0)],
            r,
            b,
        );
        assert_eq!(c.band, Band::Within);
        assert_eq!(c.accuracy_m, Some(8.0));
        // A cold start with no start fix: the end decides; no fix at all is no_fix.
        assert_eq!(
            classify_visit(&[], &[fix_north(600.0, 5.0)], r, b).band,
            Band::Beyond
        );
        assert_eq!(classify_visit(&[], &[], r, b).band, Band::NoFix);
        assert_eq!(
            classify_visit(&[fix_north(1.0, 1.0)], &[], None, b).band,
            Band::NoReference
        );
    }

    #[test]
    fn the_best_fix_decides() {
        let r = Some((LAT, LON));
        let c = classify(
            &[fix_north(800.0, 5.0), fix_north(20.0, 5.0)],
            r,
            Bands::default(),
        );
        assert_eq!(c.band, Band::Within);
    }

    #[test]
    fn band_names_round_trip() {
        for b in [
            Band::Within,
            Band::NoFix,
            Band::FarBeyond,
            Band::NoReference,
        ] {
            assert_eq!(Band::parse(b.as_str()), Some(b));
        }
    }
}
