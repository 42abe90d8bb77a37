//! The benchmark's plot, as a dependency-free SVG: start latency as a
//! cumulative distribution per system, and the agent's memory by pods.

use std::fmt::Write;

/// One line of a panel: its label and (x, y) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Log scale on x (latencies from milliseconds to seconds).
    pub log_x: bool,
}

const COLORS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
const W: f64 = 520.0;
const H: f64 = 320.0;
const PAD: f64 = 56.0;

/// Panels side by side in one SVG document.
pub fn svg(title: &str, panels: &[Panel]) -> String {
    let width = W * panels.len() as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="12" y="20" font-size="14">{}</text>"#,
        H + 30.0,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        draw(&mut out, panel, W * i as f64, 30.0);
    }
    out.push_str("</svg>\n");
    out
}

fn draw(out: &mut String, p: &Panel, ox: f64, oy: f64) {
    let all = p.series.iter().flat_map(|s| s.points.iter());
    let fx = |x: f64| if p.log_x { x.max(0.1).log10() } else { x };
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(fx(x));
        x1 = x1.max(fx(x));
        y1 = y1.max(y);
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.05 };
    let sx = |x: f64| ox + PAD + (fx(x) - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let sy = |y: f64| oy + H - PAD + -y / y1 * (H - 2.0 * PAD);
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" font-size="13">{}</text><line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="black"/>"#,
        ox + PAD,
        oy + 16.0,
        escape(&p.title),
        l = ox + PAD,
        r = ox + W - PAD,
        t = oy + PAD,
        b = oy + H - PAD
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let xv = x0 + f * (x1 - x0);
        let shown = if p.log_x { 10f64.powf(xv) } else { xv };
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            ox + PAD + f * (W - 2.0 * PAD),
            oy + H - PAD + 16.0,
            round(shown),
            ox + PAD - 4.0,
            sy(f * y1) + 4.0,
            round(f * y1)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="middle">{}</text>"#,
        ox + W / 2.0,
        oy + H - 16.0,
        escape(&p.x_label),
        ox + 14.0,
        oy + H / 2.0,
        ox + 14.0,
        oy + H / 2.0,
        escape(&p.y_label)
    );
    for (i, s) in p.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><text x="{}" y="{}" fill="{color}">{}</text>"#,
            path.join(" "),
            ox + W - PAD - 150.0,
            oy + PAD + 14.0 * i as f64,
            escape(&s.label)
        );
    }
}

fn round(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A cumulative distribution of sorted samples: (value, fraction <= value).
pub fn cdf(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, (i + 1) as f64 / n))
        .collect()
}
