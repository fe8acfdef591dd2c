//! Bar charts drawn on the server as inline SVG: no script, no external asset, readable by
//! screen readers (a title and description, each bar's value in its `<title>`) and followed by
//! the same figures as a table.
//!
//! Geometry is integer arithmetic over the values, so amounts of money are never turned into
//! floating point even for drawing.

use maud::{html, Markup};

/// Width of the drawing, in SVG units (it scales to its container).
const WIDTH: u64 = 640;
/// Height of the bars' area.
const HEIGHT: u64 = 200;
/// Room under the bars for the axis labels.
const AXIS: u64 = 30;

/// One bar: its label (a day), its value (in the chart's unit: pico-dollars, tokens,
/// requests) and the value as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// The label under the bar.
    pub label: String,
    /// The value the bar's height is drawn from.
    pub value: u128,
    /// The value as text.
    pub shown: String,
}

/// Height of a bar of `value` when the tallest is `max`, in whole units, at least 1 for a
/// value above zero so that it stays visible.
pub fn bar_height(value: u128, max: u128, height: u64) -> u64 {
    if value == 0 || max == 0 {
        return 0;
    }
    // Both scaled down first when the product could overflow (values near u128::MAX).
    let scale = max / u128::from(u64::MAX) + 1;
    let (value, max) = (value.min(max) / scale, max / scale);
    let h = value * u128::from(height) / max;
    u64::try_from(h).unwrap_or(height).clamp(1, height)
}

/// A bar chart with an accessible name (`title`) and description; `id` makes its labels
/// unique in the page.
pub fn bars(id: &str, title: &str, description: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let n = bars.len().max(1) as u64;
    let slot = WIDTH / n;
    let gap = (slot / 5).max(1);
    let width = slot.saturating_sub(gap).max(1);
    // Every label when few, else about five of them.
    let every = bars.len().div_ceil(5).max(1);
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + AXIS)) role="img"
                aria-labelledby=(format!("{title_id} {desc_id}")) {
                title id=(title_id) { (title) }
                desc id=(desc_id) { (description) }
                line.axis x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) {}
                @for (i, bar) in bars.iter().enumerate() {
                    @let h = bar_height(bar.value, max, HEIGHT);
                    @let x = i as u64 * slot + gap / 2;
                    rect.bar x=(x) y=(HEIGHT - h) width=(width) height=(h) {
                        title { (bar.label) ": " (bar.shown) }
                    }
                    @if i % every == 0 {
                        // The first label starts at its bar, so that it is not cut at the edge.
                        text.tick x=(if i == 0 { x } else { x + width / 2 }) y=(HEIGHT + AXIS - 6)
                            text-anchor=(if i == 0 { "start" } else { "middle" }) {
                            (short_label(&bar.label))
                        }
                    }
                }
            }
            figcaption { (title) }
        }
    }
}

/// `2026-11-23` as `11-23`; other labels as they are.
fn short_label(label: &str) -> &str {
    if label.len() == 10 && label.as_bytes().get(4) == Some(&b'-') {
        &label[5..]
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_table() {
        let cases = [
            (0, 0, 0),
            (0, 10, 0),
            (10, 10, 200),
            (5, 10, 100),
            (1, 1_000_000, 1),
            (u128::MAX, u128::MAX, 200),
            (u128::MAX / 2, u128::MAX, 100),
            (7, 3, 200),
        ];
        for (value, max, expected) in cases {
            assert_eq!(bar_height(value, max, HEIGHT), expected, "{value}/{max}");
        }
    }

    #[test]
    fn chart_is_labelled_and_escapes() {
        let svg = bars(
            "spend",
            "Spend <per day>",
            "desc",
            &[
                Bar {
                    label: "2026-11-23".into(),
                    value: 3,
                    shown: "$3".into(),
                },
                Bar {
                    label: "2026-11-24".into(),
                    value: 0,
                    shown: "$0".into(),
                },
            ],
        )
        .into_string();
        assert!(svg.contains("aria-labelledby=\"spend-title spend-desc\""));
        assert!(svg.contains("Spend &lt;per day&gt;"));
        assert!(svg.contains("2026-11-23: $3"));
        assert!(svg.contains(">11-23<"));
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
