//! `junit.xml`: one test case per threshold (and one for the run itself), so CI systems
//! show exactly which recovery promise failed. Rendered from the [`Report`] alone.

use std::fmt::Write;

use super::Report;
use super::markdown::measured;

/// Renders the report's thresholds as a JUnit XML document.
pub fn render(r: &Report) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    // The run's own health comes first: an interrupted or failed run fails the gate.
    let _ = write!(
        cases,
        "    <testcase classname=\"squall.run\" name=\"run completed\" time=\"{:.3}\">",
        r.run.duration_s
    );
    if r.run.status != "completed" {
        failures += 1;
        let why = r
            .run
            .error
            .clone()
            .unwrap_or_else(|| format!("the run was {}", r.run.status));
        let _ = write!(
            cases,
            "\n      <failure message=\"{}\" type=\"{}\"/>\n    ",
            escape(&why),
            escape(&r.run.status)
        );
    }
    cases.push_str("</testcase>\n");
    for t in &r.thresholds {
        let name = format!("{}: {}", t.metric, t.expression);
        let _ = write!(
            cases,
            "    <testcase classname=\"squall.thresholds.{}\" name=\"{}\" time=\"0\">",
            escape(&t.metric),
            escape(&name)
        );
        if !t.ok {
            failures += 1;
            let measured = measured(t);
            let _ = write!(
                cases,
                "\n      <failure message=\"{} failed: measured {}\" type=\"threshold\">{} {} (measured {})</failure>\n    ",
                escape(&t.expression),
                escape(&measured),
                escape(&t.metric),
                escape(&t.expression),
                escape(&measured)
            );
        }
        cases.push_str("</testcase>\n");
    }
    let tests = r.thresholds.len() + 1;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"squall\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">",
        r.run.duration_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        escape(r.name()),
        r.run.duration_s,
        escape(&r.run.started_at)
    );
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// XML text and attribute escaping; control characters XML 1.0 forbids become spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_xml_requires() {
        assert_eq!(
            escape("p(99) < 3s & \"x\"\u{1}"),
            "p(99) &lt; 3s &amp; &quot;x&quot; "
        );
    }
}
