//! Byte sizes and times, read and written the way people write them.

/// Sizes for people: 1.5 GiB, 300.0 MiB.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A size as people write it: "5G", "5120M", "5GiB", "1048576" (bytes); powers of
/// 1024, at least 1 MiB (the smallest useful filesystem).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 5G or 5120M"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use K, M, G or T (powers of 1024)"
            ));
        }
    };
    number
        .checked_mul(1u64 << shift)
        .filter(|&bytes| bytes >= 1 << 20)
        .ok_or_else(|| format!("{text:?} is not a usable filesystem size (1M or more)"))
}

/// A UTC time (seconds since 1970) as ISO 8601, `2026-12-03T02:36:07Z`.
pub fn iso8601(seconds: u64) -> String {
    let (y, m, d) = civil_date(seconds / 86_400);
    let rest = seconds % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The UTC day of a time (seconds since 1970), `2026-12-03`.
pub fn date(seconds: u64) -> String {
    let (y, m, d) = civil_date(seconds / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 as (year, month, day) of the proleptic Gregorian calendar:
/// the days are counted in 400-year eras of 146,097 days, years from March so that
/// the leap day ends the year (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        // As `date -u -d @N +%FT%TZ` writes them.
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_796_265_367), "2026-12-03T02:36:07Z");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(4_107_456_000), "2100-02-28");
        assert_eq!(date(4_107_542_400), "2100-03-01");
    }
}
