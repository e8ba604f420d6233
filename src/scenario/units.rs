//! Humane units, both ways: durations (`250ms`, `5s`, `2m`), sizes (`512B`, `4KiB`),
//! rates (`10/s`, `30/m`, and `64KiB/s` for bandwidth) and shares (`25%`, `0.25`).
//!
//! Parsing leans on `humantime` and `bytesize`; this file only adds what they lack
//! (negatives named as such, overflow caught, rates split at `/`). Formatting picks the
//! largest unit that divides the value exactly, so every formatted value parses back to
//! the same one: the normalized scenario in a report must replay identically.
//!
//! Errors are the message after `path: ` in a scenario error, and end with what was got.

use std::time::Duration;

use bytesize::ByteSize;

use super::model::{Rate, Share};

/// `(got 5 parsecs)`, with empty input made visible.
fn got(text: &str) -> String {
    if text.is_empty() {
        "(got an empty string)".into()
    } else {
        format!("(got {text})")
    }
}

/// `250ms`, `5s`, `2m`, `1h`, `1m 30s`, `1.5s`, or a bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("must not be negative {}", got(text)));
    }
    humantime::parse_duration(text).map_err(|error| match error {
        // humantime says the same for a fraction below its 1ns resolution.
        humantime::DurationError::NumberOverflow if text.contains('.') => {
            format!("is too large, or finer than 1ns {}", got(text))
        }
        humantime::DurationError::NumberOverflow => format!("is too large {}", got(text)),
        humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("needs a unit, like 5s or 250ms {}", got(text))
        }
        _ => format!("expected a duration like 250ms, 5s or 2m {}", got(text)),
    })
}

/// The largest unit that divides the duration exactly: `250ms`, `5s`, `2m`, `1500ms`.
pub fn format_duration(duration: Duration) -> String {
    const UNITS: [(&str, u128); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let (unit, size) = UNITS
        .into_iter()
        .find(|(_, size)| nanos.is_multiple_of(*size))
        .unwrap_or(("ns", 1));
    format!("{}{unit}", nanos / size)
}

/// `512B`, `4KiB`, `1MiB`, `64KB` (decimal), or bare bytes `512`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("must not be negative {}", got(text)));
    }
    let size = text
        .parse::<ByteSize>()
        .map_err(|_| format!("expected a size like 512B, 4KiB or 1MiB {}", got(text)))?;
    // bytesize saturates on overflow rather than failing.
    if size.0 == u64::MAX {
        return Err(format!("is too large {}", got(text)));
    }
    Ok(size.0)
}

/// The largest binary unit that divides the size exactly: `256B`, `4KiB`, `16MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match UNITS
        .into_iter()
        .find(|(_, size)| bytes != 0 && bytes.is_multiple_of(*size))
    {
        Some((unit, size)) => format!("{}{unit}", bytes / size),
        None => format!("{bytes}B"),
    }
}

/// Splits `amount/period` and returns the period in seconds; `s`, `m`, `h` are one of
/// that unit, `5s` is five seconds.
fn split_rate<'t>(text: &'t str, example: &str) -> Result<(&'t str, f64), String> {
    let Some((amount, period)) = text.split_once('/') else {
        return Err(format!("expected a rate like {example} {}", got(text)));
    };
    let period = period.trim();
    let starts_with_digit = period.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let period = if starts_with_digit {
        parse_duration(period)
    } else {
        parse_duration(&format!("1{period}"))
    }
    .map_err(|_| {
        format!(
            "expected a rate like {example} (per s, m or h) {}",
            got(text)
        )
    })?;
    if period.is_zero() {
        return Err(format!("the period must be > 0 {}", got(text)));
    }
    Ok((amount.trim(), period.as_secs_f64()))
}

/// Events per second: `10/s`, `0.2/s`, `30/m`, `100/h`; a bare `0` is no events.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Rate::ZERO);
    }
    if text.parse::<f64>().is_ok() {
        return Err(format!("needs a unit, like 10/s or 30/m {}", got(text)));
    }
    let (amount, seconds) = split_rate(text, "10/s, 0.2/s or 30/m")?;
    let count: f64 = amount
        .parse()
        .map_err(|_| format!("expected a number before `/` {}", got(text)))?;
    if !count.is_finite() {
        return Err(format!("must be a finite number {}", got(text)));
    }
    if count < 0.0 {
        return Err(format!("must not be negative {}", got(text)));
    }
    let per_second = count / seconds;
    if !per_second.is_finite() {
        return Err(format!("is too large {}", got(text)));
    }
    Ok(Rate { per_second })
}

/// A whole number per second, minute or hour when one is exact, else per second.
pub fn format_rate(rate: Rate) -> String {
    for (unit, seconds) in [("s", 1.0), ("m", 60.0), ("h", 3600.0)] {
        let count = rate.per_second * seconds;
        if count.fract() == 0.0 && count / seconds == rate.per_second {
            return format!("{count}/{unit}");
        }
    }
    format!("{}/s", rate.per_second)
}

/// Bandwidth in bytes per second: `64KiB/s`, `1MiB/s`, `10MB/m`.
pub fn parse_bandwidth(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (amount, seconds) = split_rate(text, "64KiB/s or 1MiB/s")?;
    let bytes = parse_size(amount).map_err(|error| match error.starts_with("expected") {
        true => format!("expected a size before `/`, like 64KiB/s {}", got(text)),
        false => error,
    })?;
    Ok((bytes as f64 / seconds).round() as u64)
}

pub fn format_bandwidth(bytes_per_second: u64) -> String {
    format!("{}/s", format_size(bytes_per_second))
}

/// A fraction of a whole: `25%` or `0.25`, within 0–100%.
pub fn parse_share(text: &str) -> Result<Share, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(number) => (number.trim(), 100.0),
        None => (text, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a share like 25% or 0.25 {}", got(text)))?;
    if !value.is_finite() {
        return Err(format!("must be a finite number {}", got(text)));
    }
    if value < 0.0 {
        return Err(format!("must not be negative {}", got(text)));
    }
    let share = value / scale;
    if share > 1.0 {
        return Err(format!("must be at most 100% {}", got(text)));
    }
    Ok(Share(share))
}

/// `25%` when the percentage parses back exactly, else the plain fraction.
pub fn format_share(share: Share) -> String {
    let percent = share.0 * 100.0;
    if percent / 100.0 == share.0 {
        format!("{percent}%")
    } else {
        format!("{}", share.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("5s"), Ok(ms(5000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1m 30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations() {
        for text in [
            "",
            "s",
            "5 parsecs",
            "five seconds",
            "5s5",
            "NaN",
            "inf",
            "1e3s",
            "5%",
        ] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.contains("(got"), "{text}: {error}");
        }
        assert_eq!(
            parse_duration("5"),
            Err("needs a unit, like 5s or 250ms (got 5)".into())
        );
        assert_eq!(
            parse_duration("-5s"),
            Err("must not be negative (got -5s)".into())
        );
        let error = parse_duration("99999999999999999999999h").unwrap_err();
        assert!(error.starts_with("is too large"), "{error}");
        assert_eq!(
            parse_duration("0.0000000001ns"),
            Err("is too large, or finer than 1ns (got 0.0000000001ns)".into())
        );
    }

    #[test]
    fn durations_format_and_parse_back() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (ms(250), "250ms"),
            (ms(1500), "1500ms"),
            (ms(5000), "5s"),
            (ms(90_000), "90s"),
            (ms(120_000), "2m"),
            (ms(7_200_000), "2h"),
            (Duration::from_micros(7), "7us"),
            (Duration::from_nanos(3), "3ns"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("0B"), Ok(0));
        for text in [
            "",
            "B",
            "KiB",
            "12 parsecs",
            "1.2.3KiB",
            "NaN",
            "inf",
            "1e3B",
        ] {
            let error = parse_size(text).unwrap_err();
            assert!(error.starts_with("expected a size"), "{text}: {error}");
        }
        assert_eq!(
            parse_size("-5B"),
            Err("must not be negative (got -5B)".into())
        );
        let error = parse_size("99999999999999999999999EiB").unwrap_err();
        assert!(error.starts_with("is too large"), "{error}");
    }

    #[test]
    fn sizes_format_and_parse_back() {
        for (bytes, text) in [
            (0, "0B"),
            (256, "256B"),
            (4096, "4KiB"),
            (64_000, "64000B"),
            (16 << 20, "16MiB"),
            (3 << 30, "3GiB"),
        ] {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes));
        }
    }

    #[test]
    fn rates() {
        let per_second = |text| parse_rate(text).map(|rate| rate.per_second);
        assert_eq!(per_second("10/s"), Ok(10.0));
        assert_eq!(per_second("0.2/s"), Ok(0.2));
        assert_eq!(per_second("30/m"), Ok(0.5));
        assert_eq!(per_second("100/h"), Ok(100.0 / 3600.0));
        assert_eq!(per_second("10/5s"), Ok(2.0));
        assert_eq!(per_second("0/s"), Ok(0.0));
        assert_eq!(per_second("0"), Ok(0.0));
        for text in [
            "",
            "10",
            "10/",
            "/s",
            "ten/s",
            "10/parsec",
            "10/0s",
            "NaN/s",
            "inf/s",
        ] {
            assert!(parse_rate(text).is_err(), "{text}");
        }
        assert_eq!(
            parse_rate("-1/s"),
            Err("must not be negative (got -1/s)".into())
        );
        assert!(
            parse_rate("1e308/1ns")
                .unwrap_err()
                .starts_with("is too large")
        );
    }

    #[test]
    fn rates_format_and_parse_back() {
        for text in ["10/s", "0.2/s", "30/m", "100/h", "1/h", "7/m", "0/s"] {
            let rate = parse_rate(text).unwrap();
            let formatted = format_rate(rate);
            assert_eq!(parse_rate(&formatted), Ok(rate), "{text} -> {formatted}");
        }
        assert_eq!(format_rate(parse_rate("30/m").unwrap()), "30/m");
        assert_eq!(format_rate(parse_rate("0.25/s").unwrap()), "15/m");
        assert_eq!(format_rate(parse_rate("0.3/s").unwrap()), "18/m");
        assert_eq!(format_rate(parse_rate("100/h").unwrap()), "100/h");
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("64KiB/s"), Ok(65_536));
        assert_eq!(parse_bandwidth("1MiB/s"), Ok(1 << 20));
        assert_eq!(parse_bandwidth("60KB/m"), Ok(1000));
        assert_eq!(format_bandwidth(65_536), "64KiB/s");
        assert_eq!(parse_bandwidth(&format_bandwidth(1000)), Ok(1000));
        for text in [
            "64KiB",
            "fast/s",
            "-1KiB/s",
            "64KiB/x",
            "99999999999999999999999EiB/s",
        ] {
            assert!(parse_bandwidth(text).is_err(), "{text}");
        }
    }

    #[test]
    fn shares() {
        assert_eq!(parse_share("25%"), Ok(Share(0.25)));
        assert_eq!(parse_share("0.25"), Ok(Share(0.25)));
        assert_eq!(parse_share("100%"), Ok(Share(1.0)));
        assert_eq!(parse_share("0"), Ok(Share(0.0)));
        assert_eq!(
            parse_share("150%"),
            Err("must be at most 100% (got 150%)".into())
        );
        assert_eq!(
            parse_share("-1%"),
            Err("must not be negative (got -1%)".into())
        );
        for text in ["", "%", "lots", "1.5", "NaN", "inf%", "NaN%"] {
            assert!(parse_share(text).is_err(), "{text}");
        }
        for share in [0.0, 0.25, 0.1, 1.0 / 3.0, 0.0001, 1.0] {
            assert_eq!(parse_share(&format_share(Share(share))), Ok(Share(share)));
        }
        assert_eq!(format_share(Share(0.25)), "25%");
    }
}
