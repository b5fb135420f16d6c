//! Where the phone is. Screens ask a [`LocationProvider`]; the desktop build simulates one,
//! Android and iOS implement it over the platform's location service (see README.md).
use std::path::PathBuf;
use std::sync::Mutex;

use fieldsync_protocol::location::{Band, Bands, Fix, classify, deg_to_e7, distance_m};
use fieldsync_protocol::v1;

/// Why there is no fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// The platform's location service is off or the app may not use it.
    #[error("location is turned off or not permitted")]
    Unavailable,
    /// No fix came in time (indoors, no sky).
    #[error("no fix in time")]
    Timeout,
    /// The simulated position could not be read.
    #[error("simulated position: {0}")]
    Simulation(String),
}

/// A source of GPS fixes.
pub trait LocationProvider: Send + Sync {
    /// A fresh fix. Platform providers may take a few seconds; callers never hold the UI on it.
    fn current_fix(&self) -> Result<v1::GpsFix, LocationError>;

    /// The last fix known without waiting (for distances in lists); `None` when there is none.
    fn last_known(&self) -> Option<v1::GpsFix> {
        self.current_fix().ok()
    }
}

/// A position given as "LAT,LON[,ACCURACY_M[,mock]]" in degrees and metres; `mock` makes
/// the simulated provider mark its fixes the way a platform marks a mock-location app's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub mock: bool,
}

impl std::str::FromStr for Position {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            LocationError::Simulation(format!("expected LAT,LON[,ACCURACY_M[,mock]], got {s:?}"))
        };
        let (s, mock) = match s.trim().strip_suffix(",mock") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let parts: Vec<f64> = s
            .trim()
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let (lat, lon, accuracy_m) = match parts.as_slice() {
            [lat, lon] => (*lat, *lon, 10.0),
            [lat, lon, acc] => (*lat, *lon, *acc),
            _ => return Err(bad()),
        };
        if !(-90.0..=90.0).contains(&lat)
            || !(-180.0..=180.0).contains(&lon)
            || !(0.0..=100_000.0).contains(&accuracy_m)
        {
            return Err(bad());
        }
        Ok(Position {
            lat,
            lon,
            accuracy_m,
            mock,
        })
    }
}

/// The desktop build's provider: a fixed position, or a file holding "LAT,LON[,ACCURACY_M]"
/// that is read again for every fix (so a tester can walk the agent from shop to shop by
/// rewriting it).
#[derive(Debug)]
pub struct SimulatedLocation {
    source: Source,
    last: Mutex<Option<v1::GpsFix>>,
    clock: fn() -> i64,
}

#[derive(Debug)]
enum Source {
    Fixed(Position),
    File(PathBuf),
    Off,
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl SimulatedLocation {
    pub fn fixed(p: Position) -> Self {
        Self::new(Source::Fixed(p))
    }

    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self::new(Source::File(path.into()))
    }

    /// Location switched off: every fix fails with [`LocationError::Unavailable`].
    pub fn off() -> Self {
        Self::new(Source::Off)
    }

    fn new(source: Source) -> Self {
        SimulatedLocation {
            source,
            last: Mutex::new(None),
            clock: system_ms,
        }
    }

    fn position(&self) -> Result<Position, LocationError> {
        match &self.source {
            Source::Fixed(p) => Ok(*p),
            Source::File(path) => std::fs::read_to_string(path)
                .map_err(|e| LocationError::Simulation(format!("{}: {e}", path.display())))?
                .parse(),
            Source::Off => Err(LocationError::Unavailable),
        }
    }
}

impl LocationProvider for SimulatedLocation {
    fn current_fix(&self) -> Result<v1::GpsFix, LocationError> {
        let p = self.position()?;
        let fix = v1::GpsFix {
            lat_e7: deg_to_e7(p.lat),
            lon_e7: deg_to_e7(p.lon),
            accuracy_dm: (p.accuracy_m * 10.0).round() as u32,
            provider: v1::LocationProvider::Gps as i32,
            mock: p.mock,
            device_time_ms: (self.clock)(),
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(fix);
        Ok(fix)
    }

    fn last_known(&self) -> Option<v1::GpsFix> {
        self.current_fix()
            .ok()
            .or_else(|| *self.last.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How a fix relates to an outlet's reference location, as the visit screen shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixCheck {
    pub band: Band,
    pub distance_m: Option<f64>,
    pub accuracy_m: Option<f64>,
    /// Far from the outlet: the visit is recorded but will be flagged.
    pub far: bool,
    /// The accuracy circle is too wide for the distance to mean much.
    pub inaccurate: bool,
    pub mock: bool,
}

/// An accuracy worse than this is called inaccurate on screen.
pub const INACCURATE_M: f64 = 100.0;

/// Classifies a fix the way the server will (same bands and accuracy credit).
pub fn check_fix(
    fix: Option<&v1::GpsFix>,
    reference: Option<(i32, i32)>,
    bands: Bands,
) -> FixCheck {
    let fixes: Vec<Fix> = fix
        .iter()
        .map(|f| Fix {
            lat_e7: f.lat_e7,
            lon_e7: f.lon_e7,
            accuracy_m: f.accuracy_dm as f64 / 10.0,
        })
        .collect();
    let c = classify(&fixes, reference, bands);
    let accuracy_m = fix.map(|f| f.accuracy_dm as f64 / 10.0);
    FixCheck {
        band: c.band,
        distance_m: c.distance_m,
        accuracy_m,
        far: matches!(c.band, Band::Beyond | Band::FarBeyond),
        inaccurate: accuracy_m.is_some_and(|a| a > INACCURATE_M),
        mock: fix.is_some_and(|f| f.mock),
    }
}

/// Metres from a fix to a reference location.
pub fn distance_to(fix: &v1::GpsFix, reference: (i32, i32)) -> f64 {
    distance_m(fix.lat_e7, fix.lon_e7, reference.0, reference.1)
}

/// The distributor's bands, or the defaults.
pub fn bands_of(d: Option<&v1::Distributor>) -> Bands {
    match d {
        Some(d) if d.band_near_m > 0 && d.band_mid_m > 0 && d.band_far_m > 0 => Bands {
            near_m: d.band_near_m,
            mid_m: d.band_mid_m,
            far_m: d.band_far_m,
        },
        _ => Bands::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_bad_ones_are_refused() {
        let p: Position = "50.45, 30.52, 25".parse().unwrap();
        assert_eq!((p.lat, p.lon, p.accuracy_m), (50.45, 30.52, 25.0));
        assert_eq!("50.45,30.52".parse::<Position>().unwrap().accuracy_m, 10.0);
        for bad in ["", "50.45", "abc,1", "91,0", "0,181", "1,2,3,4"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }

    #[test]
    fn file_provider_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pos");
        let loc = SimulatedLocation::from_file(&f);
        assert!(loc.current_fix().is_err());
        std::fs::write(&f, "50.4501,30.5234,8").unwrap();
        let fix = loc.current_fix().unwrap();
        assert_eq!(fix.lat_e7, 504_501_000);
        assert_eq!(fix.accuracy_dm, 80);
        std::fs::write(&f, "garbage").unwrap();
        // The last good fix is still known for distances in lists.
        assert_eq!(loc.last_known().unwrap().lat_e7, 504_501_000);
    }

    #[test]
    fn far_and_inaccurate_fixes_are_flagged() {
        let reference = Some((504_501_000, 305_234_000));
        let near = v1::GpsFix {
            lat_e7: 504_501_500,
            lon_e7: 305_234_000,
            accuracy_dm: 50,
            ..Default::default()
        };
        let c = check_fix(Some(&near), reference, Bands::default());
        assert!(!c.far && !c.inaccurate);
        let far = v1::GpsFix {
            lat_e7: 504_701_000,
            ..near
        };
        let c = check_fix(Some(&far), reference, Bands::default());
        assert!(c.far, "{c:?}");
        assert!(c.distance_m.unwrap() > 2000.0);
        let vague = v1::GpsFix {
            accuracy_dm: 3500,
            ..near
        };
        assert!(check_fix(Some(&vague), reference, Bands::default()).inaccurate);
        assert_eq!(
            check_fix(None, reference, Bands::default()).band,
            Band::NoFix
        );
    }
}
