//! Field-truth signals: the ways a visit's record says it was not made where and when it
//! claims, each computed from what the server knows of the visit (its fixes, its outlet's
//! reference location, device and server times, the same mobile user's previous visit).
//!
//! A signal flags a visit for a key user to look at; it never refuses anything. Each has a
//! stable name ([`Signal::as_str`], stored and used in URLs) and the evidence that raised it
//! ([`Found`]: a variant and plain numbers a key user can check, rendered through the
//! translation catalogue under `signal.<name>.<variant>`). The thresholds are
//! [`Thresholds::default`]; `docs/field-truth.md` gives their reasons and sources. The server
//! computes them at ingest (`server/src/store/ingest/truth.rs`) and stores them with the visit.
use crate::location::{Band, Bands, Fix, classify_visit, distance_m};

/// One way a visit's record can be untrue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// The platform marked a fix as coming from a mock-location provider.
    Mocked,
    /// The visit's fixes put it beyond the outlet (the `beyond` and `far_beyond` bands).
    OffSite,
    /// The visit ended without a single fix.
    NoFix,
    /// The agent could not have travelled from the previous visit to this one in the time
    /// between them.
    ImplausibleTravel,
    /// Two fixes have exactly the same coordinates, to the last digit (1e-7 degree, about
    /// 1 cm): real receivers never repeat themselves that exactly; replayed positions do.
    RepeatedFix,
    /// A fix claims an accuracy no phone reaches with its provider (a GPS fix of 1 m, a
    /// network fix of 5 m).
    TooAccurate,
    /// A fix sits exactly on the outlet's reference location: typed in, not measured.
    OnReference,
    /// The device's clock disagrees with the order of its own actions or with the server's
    /// clock: it was moved to back-date or post-date the visit.
    ClockJump,
    /// The visit lasted less than any real visit can.
    ShortStay,
}

impl Signal {
    /// Every signal, in the order the visit card lists them.
    pub const ALL: [Signal; 9] = [
        Signal::Mocked,
        Signal::OffSite,
        Signal::NoFix,
        Signal::ImplausibleTravel,
        Signal::RepeatedFix,
        Signal::TooAccurate,
        Signal::OnReference,
        Signal::ClockJump,
        Signal::ShortStay,
    ];

    /// The names of [`Signal::ALL`], in that order.
    pub const NAMES: [&'static str; 9] = {
        let mut names = [""; 9];
        let mut i = 0;
        while i < names.len() {
            names[i] = Signal::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// Stable name, stored in the database and used in URLs and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Mocked => "mocked",
            Signal::OffSite => "off_site",
            Signal::NoFix => "no_fix",
            Signal::ImplausibleTravel => "implausible_travel",
            Signal::RepeatedFix => "repeated_fix",
            Signal::TooAccurate => "too_accurate",
            Signal::OnReference => "on_reference",
            Signal::ClockJump => "clock_jump",
            Signal::ShortStay => "short_stay",
        }
    }

    /// Parses [`Signal::as_str`].
    pub fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where a fix came from, as the platform says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Gps,
    Network,
    Fused,
    Unknown,
}

/// A fix as the signals need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalFix {
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub accuracy_m: f64,
    pub provider: Provider,
    /// The platform's mock-location flag.
    pub mock: bool,
    /// When the device says it took the fix.
    pub device_time_ms: i64,
    /// Taken when the visit ended (otherwise when it started).
    pub end: bool,
}

impl SignalFix {
    fn fix(&self) -> Fix {
        Fix {
            lat_e7: self.lat_e7,
            lon_e7: self.lon_e7,
            accuracy_m: self.accuracy_m,
        }
    }
}

impl Provider {
    /// Stable name, as the server stores a fix's provider.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gps => "gps",
            Provider::Network => "network",
            Provider::Fused => "fused",
            Provider::Unknown => "unknown",
        }
    }

    /// Parses [`Provider::as_str`]; anything else is unknown.
    pub fn parse(s: &str) -> Provider {
        [Provider::Gps, Provider::Network, Provider::Fused]
            .into_iter()
            .find(|p| p.as_str() == s)
            .unwrap_or(Provider::Unknown)
    }
}

/// The same mobile user's visit before this one, in the order the server received them (not
/// by the device's clock, which can be moved), as far as the signals need it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousVisit {
    /// Its fixes (the last one is where the agent left from).
    pub fixes: Vec<SignalFix>,
    /// When it ended, by the device's clock (its start when it was never ended).
    pub ended_device_ms: i64,
}

/// Everything the server knows of one visit that a signal looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitFacts {
    pub fixes: Vec<SignalFix>,
    /// The outlet's reference location (degrees * 10^7), when it has one.
    pub reference: Option<(i32, i32)>,
    /// Device times of the start and the end (`None`: not ended).
    pub started_device_ms: i64,
    pub ended_device_ms: Option<i64>,
    /// When the server received the start.
    pub started_received_ms: i64,
    /// The device time of the mutation the device recorded just before the start (by
    /// sequence number), if any: the device's clock never runs backwards between two of its
    /// own actions unless someone moved it.
    pub preceding_device_ms: Option<i64>,
    pub previous: Option<PreviousVisit>,
}

/// Where the signals draw their lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The distributor's distance bands; `beyond` and farther raise [`Signal::OffSite`].
    pub bands: Bands,
    /// Fastest believable travel between two visits, km/h (a car in town, with margin).
    pub max_speed_kmh: f64,
    /// Distances below this are never "implausible travel" (fix noise between two visits in
    /// the same street), metres.
    pub min_travel_m: f64,
    /// A GPS (or fused) fix claiming better accuracy than this is too good, metres.
    pub min_gps_accuracy_m: f64,
    /// A network fix claiming better accuracy than this is too good, metres.
    pub min_network_accuracy_m: f64,
    /// A fix this close to the reference location is "on" it, metres.
    pub on_reference_m: f64,
    /// How far the device clock may run ahead of the server's, or back between two of its
    /// own actions, before it counts as moved, milliseconds.
    pub clock_slack_ms: i64,
    /// Shortest real visit, milliseconds.
    pub min_stay_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            bands: Bands::default(),
            max_speed_kmh: 120.0,
            min_travel_m: 2_000.0,
            min_gps_accuracy_m: 2.0,
            min_network_accuracy_m: 10.0,
            on_reference_m: 0.1,
            clock_slack_ms: 5 * 60_000,
            min_stay_ms: 60_000,
        }
    }
}

/// A signal a visit raised, with the evidence: `variant` says which case of the signal it
/// is, `args` the numbers behind it (plain ASCII, no `;` or `=`). The key user reads them
/// through the catalogue entry `signal.<name>.<variant>`, whose `{placeholders}` are the
/// args' names.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub signal: Signal,
    pub variant: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl Found {
    /// The catalogue key of the evidence.
    pub fn key(&self) -> String {
        format!("signal.{}.{}", self.signal.as_str(), self.variant)
    }

    /// The value of one arg.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The args as stored: `name=value;name=value`.
    pub fn encoded_args(&self) -> String {
        let parts: Vec<String> = self.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join(";")
    }
}

/// Reads [`Found::encoded_args`] back (at most 16 pairs; a malformed pair is skipped).
pub fn decode_args(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| p.split_once('='))
        .take(16)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The stored form of a visit's signal names: `,a,b,` (empty when none), so that a filter
/// can look for `,name,`.
pub fn encode_list(found: &[Found]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = found.iter().map(|f| f.signal.as_str()).collect();
    format!(",{},", names.join(","))
}

/// The names in a list stored by [`encode_list`].
pub fn decode_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

/// Every signal the visit raises, in [`Signal::ALL`] order.
pub fn signals(v: &VisitFacts, t: &Thresholds) -> Vec<Found> {
    let clock = clock_jump(v, t);
    let checks = [
        mocked(v),
        off_site(v, t),
        no_fix(v),
        // Travel times come from the device clock; a moved clock makes them meaningless.
        if clock.is_some() {
            None
        } else {
            implausible_travel(v, t)
        },
        repeated_fix(v),
        too_accurate(v, t),
        on_reference(v, t),
        clock,
        short_stay(v, t),
    ];
    checks.into_iter().flatten().collect()
}

fn found<const N: usize>(
    signal: Signal,
    variant: &'static str,
    args: [(&'static str, String); N],
) -> Option<Found> {
    Some(Found {
        signal,
        variant,
        args: args.into(),
    })
}

/// The visit's band (see [`classify_visit`]).
pub fn band(v: &VisitFacts, bands: Bands) -> crate::location::Classification {
    let start: Vec<Fix> = v.fixes.iter().filter(|f| !f.end).map(|f| f.fix()).collect();
    let end: Vec<Fix> = v.fixes.iter().filter(|f| f.end).map(|f| f.fix()).collect();
    classify_visit(&start, &end, v.reference, bands)
}

/// [`Signal::OffSite`]: the visit's band is `beyond` or `far_beyond`.
pub fn off_site(v: &VisitFacts, t: &Thresholds) -> Option<Found> {
    let c = band(v, t.bands);
    if !matches!(c.band, Band::Beyond | Band::FarBeyond) {
        return None;
    }
    found(
        Signal::OffSite,
        c.band.as_str(),
        [
            ("distance", format!("{:.0}", c.distance_m.unwrap_or(0.0))),
            ("accuracy", format!("{:.0}", c.accuracy_m.unwrap_or(0.0))),
        ],
    )
}

/// [`Signal::NoFix`]: an ended visit without any fix.
pub fn no_fix(v: &VisitFacts) -> Option<Found> {
    (v.ended_device_ms.is_some() && v.fixes.is_empty())
        .then(|| found(Signal::NoFix, "none", []))
        .flatten()
}

/// [`Signal::Mocked`]: any fix with the platform's mock flag.
pub fn mocked(v: &VisitFacts) -> Option<Found> {
    let n = v.fixes.iter().filter(|f| f.mock).count();
    (n > 0)
        .then(|| {
            found(
                Signal::Mocked,
                "fixes",
                [("n", n.to_string()), ("total", v.fixes.len().to_string())],
            )
        })
        .flatten()
}

/// [`Signal::ImplausibleTravel`]: from the previous visit's last fix to this visit's first,
/// farther than `min_travel_m` at more than `max_speed_kmh` (or with no time at all between).
/// The args carry where the agent came from (`from_lat`, `from_lon`, degrees * 10^7) for the
/// map.
pub fn implausible_travel(v: &VisitFacts, t: &Thresholds) -> Option<Found> {
    let prev = v.previous.as_ref()?;
    let from = prev.fixes.last()?;
    let to = v.fixes.first()?;
    let metres = distance_m(from.lat_e7, from.lon_e7, to.lat_e7, to.lon_e7);
    if metres < t.min_travel_m {
        return None;
    }
    let gap_ms = v.started_device_ms - prev.ended_device_ms;
    let km = format!("{:.1}", metres / 1000.0);
    let (lat, lon) = (from.lat_e7.to_string(), from.lon_e7.to_string());
    if gap_ms <= 0 {
        return found(
            Signal::ImplausibleTravel,
            "no_time",
            [("km", km), ("from_lat", lat), ("from_lon", lon)],
        );
    }
    let kmh = metres / 1000.0 / (gap_ms as f64 / 3_600_000.0);
    if kmh <= t.max_speed_kmh {
        return None;
    }
    found(
        Signal::ImplausibleTravel,
        "speed",
        [
            ("km", km),
            ("min", format!("{}", (gap_ms as f64 / 60_000.0).round())),
            ("kmh", format!("{kmh:.0}")),
            ("from_lat", lat),
            ("from_lon", lon),
        ],
    )
}

/// [`Signal::RepeatedFix`]: two fixes with identical coordinates, within this visit or
/// between it and the previous visit.
pub fn repeated_fix(v: &VisitFacts) -> Option<Found> {
    let earlier = v.previous.iter().flat_map(|p| p.fixes.iter());
    let mut seen: Vec<(i32, i32)> = earlier.map(|f| (f.lat_e7, f.lon_e7)).collect();
    let from_previous = seen.len();
    for (i, f) in v.fixes.iter().enumerate() {
        let at = (f.lat_e7, f.lon_e7);
        if let Some(j) = seen.iter().position(|s| *s == at) {
            let variant = if j < from_previous {
                "previous_visit"
            } else {
                "this_visit"
            };
            return found(
                Signal::RepeatedFix,
                variant,
                [
                    ("fix", (i + 1).to_string()),
                    ("lat", crate::location::e7_text(at.0 as i64)),
                    ("lon", crate::location::e7_text(at.1 as i64)),
                ],
            );
        }
        seen.push(at);
    }
    None
}

/// [`Signal::TooAccurate`]: a fix better than its provider can be (a zero or negative
/// accuracy included; an unknown provider is held to the GPS line). The variant is the
/// provider's name.
pub fn too_accurate(v: &VisitFacts, t: &Thresholds) -> Option<Found> {
    v.fixes.iter().find_map(|f| {
        let floor = match f.provider {
            Provider::Network => t.min_network_accuracy_m,
            Provider::Gps | Provider::Fused | Provider::Unknown => t.min_gps_accuracy_m,
        };
        if f.accuracy_m >= floor {
            return None;
        }
        found(
            Signal::TooAccurate,
            f.provider.as_str(),
            [
                ("accuracy", format!("{:.1}", f.accuracy_m)),
                ("floor", format!("{floor:.0}")),
            ],
        )
    })
}

/// [`Signal::OnReference`]: a fix within `on_reference_m` of the reference location.
pub fn on_reference(v: &VisitFacts, t: &Thresholds) -> Option<Found> {
    let (rlat, rlon) = v.reference?;
    v.fixes.iter().find_map(|f| {
        let d = distance_m(f.lat_e7, f.lon_e7, rlat, rlon);
        if d > t.on_reference_m {
            return None;
        }
        found(
            Signal::OnReference,
            "distance",
            [("distance", format!("{d:.2}"))],
        )
    })
}

/// [`Signal::ClockJump`]: the start is dated more than `clock_slack_ms` after the server
/// received it, or before the device's preceding action.
pub fn clock_jump(v: &VisitFacts, t: &Thresholds) -> Option<Found> {
    let ahead = v.started_device_ms - v.started_received_ms;
    if ahead > t.clock_slack_ms {
        return found(
            Signal::ClockJump,
            "ahead",
            [("min", (ahead / 60_000).to_string())],
        );
    }
    let back = v.preceding_device_ms? - v.started_device_ms;
    if back <= t.clock_slack_ms {
        return None;
    }
    found(
        Signal::ClockJump,
        "behind",
        [("min", (back / 60_000).to_string())],
    )
}

/// [`Signal::ShortStay`]: an ended visit shorter than `min_stay_ms`.
pub fn short_stay(v: &VisitFacts, t: &Thresholds) -> Option<Found> {
    let stay = v.ended_device_ms? - v.started_device_ms;
    if stay >= t.min_stay_ms {
        return None;
    }
    found(
        Signal::ShortStay,
        "seconds",
        [("s", (stay.max(0) / 1000).to_string())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_list_names_each_signal_between_commas_and_reads_back() {
        let f = |signal| Found {
            signal,
            variant: "x",
            args: vec![],
        };
        let found = [f(Signal::Mocked), f(Signal::ShortStay)];
        assert_eq!(encode_list(&found), ",mocked,short_stay,");
        assert_eq!(encode_list(&[]), "");
        assert_eq!(
            decode_list(",mocked,short_stay,").collect::<Vec<_>>(),
            ["mocked", "short_stay"]
        );
        assert_eq!(decode_list("").count(), 0);
    }

    // Kyiv, Maidan Nezalezhnosti.
    const LAT: i32 = 504_501_000;
    const LON: i32 = 305_234_000;
    const T0: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    /// A GPS fix `north_m` metres north of the reference, 8 m accurate, at `at_ms`.
    fn fix(north_m: f64, at_ms: i64) -> SignalFix {
        SignalFix {
            lat_e7: LAT + (north_m / 111_195.0 * 1e7) as i32,
            lon_e7: LON,
            accuracy_m: 8.0,
            provider: Provider::Gps,
            mock: false,
            device_time_ms: at_ms,
            end: false,
        }
    }

    /// An honest 20-minute visit 12 m from its outlet, with two slightly different fixes.
    fn honest() -> VisitFacts {
        VisitFacts {
            fixes: vec![fix(12.0, T0), fix(14.0, T0 + 20 * MIN)],
            reference: Some((LAT, LON)),
            started_device_ms: T0,
            ended_device_ms: Some(T0 + 20 * MIN),
            started_received_ms: T0 + 3 * 60 * MIN,
            preceding_device_ms: Some(T0 - 30 * MIN),
            previous: Some(PreviousVisit {
                fixes: vec![fix(-3_000.0, T0 - 40 * MIN)],
                ended_device_ms: T0 - 30 * MIN,
            }),
        }
    }

    fn raised(v: &VisitFacts) -> Vec<Signal> {
        signals(v, &Thresholds::default())
            .into_iter()
            .map(|f| f.signal)
            .collect()
    }

    #[test]
    fn an_honest_visit_raises_nothing() {
        assert_eq!(raised(&honest()), vec![]);
        // Nor does the first visit of a day, without a previous one or a preceding action.
        let mut v = honest();
        v.previous = None;
        v.preceding_device_ms = None;
        assert_eq!(raised(&v), vec![]);
    }

    #[test]
    fn names_round_trip() {
        for s in Signal::ALL {
            assert_eq!(Signal::parse(s.as_str()), Some(s));
        }
        assert_eq!(Signal::parse("nope"), None);
    }

    #[test]
    fn a_mock_flag_on_any_fix_is_raised() {
        let mut v = honest();
        v.fixes[1].mock = true;
        let f = mocked(&v).unwrap();
        assert_eq!(
            (f.key().as_str(), f.encoded_args().as_str()),
            ("signal.mocked.fixes", "n=1;total=2")
        );
        assert_eq!(raised(&v), vec![Signal::Mocked]);
    }

    #[test]
    fn travel_faster_than_a_car_is_implausible_and_short_hops_never_are() {
        let t = Thresholds::default();
        // 3 km in 10 min = 18 km/h: fine. In 1 min = 180 km/h: not.
        let mut v = honest();
        assert!(implausible_travel(&v, &t).is_none());
        v.previous.as_mut().unwrap().ended_device_ms = T0 - MIN;
        let f = implausible_travel(&v, &t).unwrap();
        assert_eq!(f.variant, "speed");
        assert_eq!((f.arg("km"), f.arg("min")), (Some("3.0"), Some("1")));
        assert!(f.arg("kmh").unwrap().starts_with("18"), "{f:?}");
        assert_eq!(
            f.arg("from_lat"),
            Some(
                v.previous.as_ref().unwrap().fixes[0]
                    .lat_e7
                    .to_string()
                    .as_str()
            )
        );
        // Just under 120 km/h (3 km in 95 s) is believed; just over (in 85 s) is not.
        v.previous.as_mut().unwrap().ended_device_ms = T0 - 95_000;
        assert!(implausible_travel(&v, &t).is_none());
        v.previous.as_mut().unwrap().ended_device_ms = T0 - 85_000;
        assert!(implausible_travel(&v, &t).is_some());
        // 27 km with no time between them.
        v.previous.as_mut().unwrap().fixes = vec![fix(-27_000.0, T0)];
        v.previous.as_mut().unwrap().ended_device_ms = T0;
        let f = implausible_travel(&v, &t).unwrap();
        assert_eq!(f.key(), "signal.implausible_travel.no_time");
        // Under 2 km is fix noise, however little time passed.
        v.previous.as_mut().unwrap().fixes = vec![fix(-1_900.0, T0)];
        assert!(implausible_travel(&v, &t).is_none());
        // Nothing to compare without fixes on either side.
        v.fixes.clear();
        assert!(implausible_travel(&v, &t).is_none());
    }

    #[test]
    fn identical_coordinates_repeat_within_a_visit_or_from_the_previous_one() {
        let mut v = honest();
        assert!(repeated_fix(&v).is_none());
        v.fixes[1] = SignalFix {
            device_time_ms: T0 + 20 * MIN,
            ..v.fixes[0]
        };
        let f = repeated_fix(&v).unwrap();
        assert_eq!((f.variant, f.arg("fix")), ("this_visit", Some("2")));
        // One unit of 1e-7 degree apart is a different position.
        v.fixes[1].lat_e7 += 1;
        assert!(repeated_fix(&v).is_none());
        // A frozen position carried over from the previous visit.
        v.previous.as_mut().unwrap().fixes = vec![v.fixes[0]];
        assert_eq!(repeated_fix(&v).unwrap().variant, "previous_visit");
    }

    #[test]
    fn accuracy_better_than_the_provider_can_give_is_too_good() {
        let t = Thresholds::default();
        let mut v = honest();
        v.fixes[0].accuracy_m = 2.0;
        assert!(too_accurate(&v, &t).is_none(), "2 m GPS is believed");
        v.fixes[0].accuracy_m = 1.0;
        assert_eq!(
            too_accurate(&v, &t).unwrap().encoded_args(),
            "accuracy=1.0;floor=2"
        );
        v.fixes[0].accuracy_m = 0.0;
        assert!(too_accurate(&v, &t).is_some());
        // A network fix is held to 10 m.
        v.fixes[0] = SignalFix {
            provider: Provider::Network,
            accuracy_m: 9.0,
            ..v.fixes[0]
        };
        assert!(too_accurate(&v, &t).is_some());
        v.fixes[0].accuracy_m = 10.0;
        assert!(too_accurate(&v, &t).is_none());
    }

    #[test]
    fn a_fix_exactly_on_the_reference_location_is_typed_in() {
        let t = Thresholds::default();
        let mut v = honest();
        assert!(on_reference(&v, &t).is_none());
        v.fixes[1].lat_e7 = LAT;
        v.fixes[1].lon_e7 = LON;
        assert!(on_reference(&v, &t).is_some());
        // 1e-7 degree of latitude is 1.1 cm: still on it; 11 cm or 1 m off is measured.
        v.fixes[1].lat_e7 = LAT + 1;
        assert!(on_reference(&v, &t).is_some());
        v.fixes[1].lat_e7 = LAT + 10;
        assert!(on_reference(&v, &t).is_none());
        v.fixes[1].lat_e7 = LAT + 90;
        assert!(on_reference(&v, &t).is_none());
        v.reference = None;
        v.fixes[1].lat_e7 = LAT;
        assert!(
            on_reference(&v, &t).is_none(),
            "no reference, nothing to be on"
        );
    }

    #[test]
    fn a_clock_ahead_of_the_server_or_running_backwards_has_been_moved() {
        let t = Thresholds::default();
        let mut v = honest();
        // Offline for hours is not a jump: the device time is before the receive time.
        assert!(clock_jump(&v, &t).is_none());
        // Dated 5 min after it was received is within the slack; 6 min is not.
        v.started_received_ms = T0 - 5 * MIN;
        assert!(clock_jump(&v, &t).is_none());
        v.started_received_ms = T0 - 6 * MIN;
        let f = clock_jump(&v, &t).unwrap();
        assert_eq!((f.variant, f.arg("min")), ("ahead", Some("6")));
        // Back-dated: before the device's own preceding action.
        v.started_received_ms = T0 + MIN;
        v.preceding_device_ms = Some(T0 + 5 * MIN);
        assert!(clock_jump(&v, &t).is_none());
        v.preceding_device_ms = Some(T0 + 2 * 60 * MIN);
        let f = clock_jump(&v, &t).unwrap();
        assert_eq!((f.variant, f.arg("min")), ("behind", Some("120")));
        // A moved clock makes travel times meaningless: only the jump is raised.
        v.previous.as_mut().unwrap().ended_device_ms = T0 + 60 * MIN;
        assert_eq!(raised(&v), vec![Signal::ClockJump]);
    }

    #[test]
    fn a_visit_shorter_than_a_minute_is_too_short() {
        let t = Thresholds::default();
        let mut v = honest();
        v.ended_device_ms = Some(T0 + MIN);
        assert!(short_stay(&v, &t).is_none());
        v.ended_device_ms = Some(T0 + MIN - 1);
        assert_eq!(short_stay(&v, &t).unwrap().arg("s"), Some("59"));
        v.ended_device_ms = None;
        assert!(
            short_stay(&v, &t).is_none(),
            "an open visit has no length yet"
        );
    }

    #[test]
    fn the_hidden_spoofing_of_the_outside_measurement_is_raised() {
        // Fixes exactly on the reference with 1 m accuracy, repeated from the previous visit,
        // after a 27 km jump in 10 minutes.
        let spot = SignalFix {
            lat_e7: LAT,
            lon_e7: LON,
            accuracy_m: 1.0,
            provider: Provider::Fused,
            mock: false,
            device_time_ms: T0,
            end: false,
        };
        let v = VisitFacts {
            fixes: vec![spot, spot],
            previous: Some(PreviousVisit {
                fixes: vec![fix(27_000.0, T0 - 20 * MIN)],
                ended_device_ms: T0 - 10 * MIN,
            }),
            ..honest()
        };
        assert_eq!(
            raised(&v),
            vec![
                Signal::ImplausibleTravel,
                Signal::RepeatedFix,
                Signal::TooAccurate,
                Signal::OnReference
            ]
        );
    }

    #[test]
    fn a_visit_beyond_its_outlet_is_off_site_and_one_good_end_fix_does_not_clear_it() {
        let t = Thresholds::default();
        let mut v = honest();
        assert!(off_site(&v, &t).is_none());
        // 120 m with 8 m accuracy is near: not flagged. 170 m is beyond.
        v.fixes = vec![fix(120.0, T0)];
        assert!(off_site(&v, &t).is_none());
        v.fixes = vec![fix(170.0, T0)];
        let f = off_site(&v, &t).unwrap();
        assert_eq!((f.variant, f.arg("accuracy")), ("beyond", Some("8")));
        // Started 4 km away; the end fix on the spot does not rewrite the start.
        v.fixes = vec![
            fix(4_000.0, T0),
            SignalFix {
                end: true,
                ..fix(5.0, T0 + 20 * MIN)
            },
        ];
        let f = off_site(&v, &t).unwrap();
        assert_eq!(f.variant, "far_beyond");
        assert!(f.arg("distance").unwrap().starts_with("400"), "{f:?}");
        // The distributor's own bands decide.
        let wide = Thresholds {
            bands: Bands {
                near_m: 50,
                mid_m: 5_000,
                far_m: 10_000,
            },
            ..t
        };
        assert!(off_site(&v, &wide).is_none());
    }

    #[test]
    fn an_ended_visit_without_any_fix_is_flagged_and_an_open_one_is_not_yet() {
        let mut v = honest();
        v.fixes.clear();
        assert_eq!(no_fix(&v).unwrap().key(), "signal.no_fix.none");
        v.ended_device_ms = None;
        assert!(no_fix(&v).is_none());
        // One fix (a cold start that found the sky by the end) is enough.
        v.ended_device_ms = Some(T0 + 20 * MIN);
        v.fixes = vec![SignalFix {
            end: true,
            ..fix(10.0, T0 + 20 * MIN)
        }];
        assert!(no_fix(&v).is_none());
    }

    #[test]
    fn evidence_args_round_trip_through_their_stored_form() {
        let f = Found {
            signal: Signal::ImplausibleTravel,
            variant: "speed",
            args: vec![("km", "27.3".into()), ("kmh", "164".into())],
        };
        assert_eq!(
            decode_args(&f.encoded_args()),
            vec![
                ("km".to_string(), "27.3".to_string()),
                ("kmh".into(), "164".into())
            ]
        );
        assert!(decode_args("").is_empty());
        assert_eq!(decode_args("junk;a=1").len(), 1);
        assert_eq!(decode_args(&"a=1;".repeat(100)).len(), 16);
        for p in [
            Provider::Gps,
            Provider::Network,
            Provider::Fused,
            Provider::Unknown,
        ] {
            assert_eq!(Provider::parse(p.as_str()), p);
        }
    }
}
