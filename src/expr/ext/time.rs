//! Timestamp getters (`getFullYear`, `getMonth`, `getDayOfYear`, `getDayOfMonth`, `getDate`,
//! `getDayOfWeek`, `getHours`, `getMinutes`, `getSeconds`, `getMilliseconds`), each with an
//! optional IANA time zone or `±HH:MM` offset, and the duration getters all come from `cel`'s
//! standard library (chrono-tz's full zone database: see docs/cel-conformance.md for its
//! size). Nothing to add; the tests pin down ngrok's documented semantics.

use cel::{DeclarationError, Env};

pub fn register(_env: &mut Env) -> Result<(), DeclarationError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok};
    use cel::Value;

    fn int(src: &str) -> i64 {
        match ok(src) {
            Value::Int(i) => i,
            other => panic!("{src}: {other:?}"),
        }
    }

    #[test]
    fn getters_in_utc_and_in_a_zone() {
        // 2024-03-10T06:30:15.250Z is a Sunday; 01:30 the same day in New York (EST, -5).
        let t = "timestamp('2024-03-10T06:30:15.250Z')";
        assert_eq!(int(&format!("{t}.getFullYear()")), 2024);
        assert_eq!(int(&format!("{t}.getMonth()")), 2, "0-based");
        assert_eq!(int(&format!("{t}.getDate()")), 10, "1-based");
        assert_eq!(int(&format!("{t}.getDayOfMonth()")), 9, "0-based");
        assert_eq!(int(&format!("{t}.getDayOfWeek()")), 0, "Sunday");
        assert_eq!(int(&format!("{t}.getDayOfYear()")), 69, "0-based");
        assert_eq!(int(&format!("{t}.getHours()")), 6);
        assert_eq!(int(&format!("{t}.getMinutes()")), 30);
        assert_eq!(int(&format!("{t}.getSeconds()")), 15);
        assert_eq!(int(&format!("{t}.getMilliseconds()")), 250);
        assert_eq!(int(&format!("{t}.getHours('America/New_York')")), 1);
        assert_eq!(int(&format!("{t}.getHours('Asia/Kolkata')")), 12);
        assert_eq!(int(&format!("{t}.getMinutes('Asia/Kolkata')")), 0);
        assert_eq!(int(&format!("{t}.getDate('Pacific/Kiritimati')")), 10);
        assert_eq!(int(&format!("{t}.getHours('-08:00')")), 22);
        assert_eq!(int(&format!("{t}.getDayOfWeek('-08:00')")), 6, "Saturday");
        assert!(eval(&format!("{t}.getHours('Mars/Olympus')")).is_err());
    }

    #[test]
    fn duration_getters() {
        let d = "duration('3h25m45.5s')";
        assert_eq!(int(&format!("{d}.getHours()")), 3);
        assert_eq!(int(&format!("{d}.getMinutes()")), 205);
        assert_eq!(int(&format!("{d}.getSeconds()")), 12345);
        assert_eq!(int(&format!("{d}.getMilliseconds()")), 12345500);
    }
}
