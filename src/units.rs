//! Byte sizes, read and written the way people write them.

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
