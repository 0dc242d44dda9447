//! Great-circle distance, the stand-in for measured latency in latency routing.

/// Mean Earth radius in kilometres (IUGG).
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Distance in kilometres between two (latitude, longitude) points in degrees (haversine).
pub fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_city_distances() {
        let seoul = (37.56, 126.97);
        let frankfurt = (50.11, 8.68);
        let d = great_circle_km(seoul, frankfurt);
        assert!(
            (8500.0..8650.0).contains(&d),
            "Seoul–Frankfurt is about 8,570 km, got {d}"
        );
        assert_eq!(great_circle_km(seoul, seoul), 0.0);
        let antipodes = great_circle_km((0.0, 0.0), (0.0, 180.0));
        assert!((antipodes - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }
}
