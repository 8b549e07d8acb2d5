//! The chart: the run's figures on one SVG page, drawn with plotters.
//!
//! Four panels, each a horizontal bar chart with the servers (or guard
//! variants) down the side: guard cost, serving throughput relative to the
//! baseline, exit latencies on a log scale, and memory at scale. Bars and
//! dots are medians and the numbers beside them too; whiskers span min to
//! max (cut at the panel's edge when one wild sample would squash the
//! rest); dashed lines are the goals.

use crate::report::{self, Results};
use crate::server::Kind;
use crate::stats::Summary;
use crate::{callgrind, guards, scale};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1040;
const OURS: RGBColor = RGBColor(31, 119, 180);
const PEER: RGBColor = RGBColor(255, 127, 14);
const PLAIN: RGBColor = RGBColor(127, 127, 127);
const GOAL: RGBColor = RGBColor(214, 39, 40);
const FONT: &str = "sans-serif";
/// Rows of room kept free for a legend.
const LEGEND_ROOM: f64 = 1.6;
/// The same for the exit panel's longer legend.
const EXIT_LEGEND_ROOM: f64 = 2.4;
/// The exit panel's series (blue means "ours" in the other panels).
const EXIT_COLORS: [RGBColor; 4] = [
    RGBColor(23, 190, 207),
    RGBColor(148, 103, 189),
    RGBColor(44, 160, 44),
    RGBColor(140, 86, 75),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Fallible = Result<(), Box<dyn std::error::Error>>;
/// One series of the exit panel: its legend, its color, and its points.
type Series = (String, RGBColor, Vec<Point>);

/// One server's latencies in one series of the exit panel.
#[derive(Debug)]
struct Point {
    server: String,
    /// Over the runs that succeeded.
    latency: Option<Summary>,
    failed: usize,
    runs: usize,
}

/// Draws the chart of `results` to `path`.
pub(crate) fn draw(results: &Results, path: &Path) -> Result<(), String> {
    draw_inner(results, path).map_err(|e| format!("drawing {}: {e}", path.display()))
}

fn draw_inner(results: &Results, path: &Path) -> Fallible {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "graceful (blue) vs. what users pick instead (orange) - {} run, {}, {} cores",
        if results.settings.quick {
            "quick"
        } else {
            "full"
        },
        results.date,
        results.machine.cores
    );
    let root = root.titled(&title, (FONT, 22))?;
    let panels = root.split_evenly((2, 2));
    guard_panel(results, &panels[0])?;
    serving_panel(results, &panels[1])?;
    exit_panel(results, &panels[2])?;
    scale_panel(results, &panels[3])?;
    root.present()?;
    Ok(())
}

/// Names down the side, first at the top: `y` of category `i` of `n`.
fn row_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

/// How many labels put one on each whole number from `lo` to `hi`, and
/// on nothing else: plotters picks the finest round step that fits.
fn whole_labels(lo: f64, hi: f64) -> usize {
    (hi.floor() - lo.ceil()) as usize + 1
}

fn name_at(names: &[String], y: f64) -> String {
    let n = names.len();
    if (y - y.round()).abs() > 1e-6 || y < -0.1 || y.round() as usize >= n {
        return String::new();
    }
    names[n - 1 - y.round() as usize].clone()
}

fn color_of(results: &Results, server: &str) -> RGBColor {
    match results.kind_of(server) {
        Some(Kind::Target | Kind::Minimal) => OURS,
        Some(Kind::Peer) => PEER,
        _ => PLAIN,
    }
}

fn empty(area: &Area<'_>, caption: &str, why: &str) -> Fallible {
    let inner = area.titled(caption, (FONT, 17))?;
    inner.draw(&Text::new(
        why.to_owned(),
        (20, 40),
        (FONT, 14).into_font().color(&PLAIN),
    ))?;
    Ok(())
}

/// A horizontal bar from `lo` to `hi` at height `y`, `width` thick.
fn bar(y: f64, lo: f64, hi: f64, width: f64, color: RGBColor) -> Rectangle<(f64, f64)> {
    Rectangle::new(
        [(lo, y - width / 2.0), (hi, y + width / 2.0)],
        color.mix(0.85).filled(),
    )
}

/// A whisker from `min` to `max` at height `y`.
fn whisker(y: f64, min: f64, max: f64, height: f64) -> Vec<PathElement<(f64, f64)>> {
    let style = ShapeStyle::from(&BLACK.mix(0.7)).stroke_width(1);
    vec![
        PathElement::new(vec![(min, y), (max, y)], style),
        PathElement::new(
            vec![(min, y - height / 2.0), (min, y + height / 2.0)],
            style,
        ),
        PathElement::new(
            vec![(max, y - height / 2.0), (max, y + height / 2.0)],
            style,
        ),
    ]
}

/// A dashed vertical line at `x` from `y0` to `y1`.
fn dashed(x: f64, y0: f64, y1: f64, color: RGBColor) -> Vec<PathElement<(f64, f64)>> {
    let steps = 40;
    let style = ShapeStyle::from(&color).stroke_width(2);
    (0..steps)
        .filter(|i| i % 2 == 0)
        .map(|i| {
            let a = y0 + (y1 - y0) * f64::from(i) / f64::from(steps);
            let b = y0 + (y1 - y0) * f64::from(i + 1) / f64::from(steps);
            PathElement::new(vec![(x, a), (x, b)], style)
        })
        .collect()
}

fn label(text: String, x: f64, y: f64) -> Text<'static, (f64, f64), String> {
    Text::new(
        text,
        (x, y),
        (FONT, 12)
            .into_font()
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
    )
}

/// `; N.NN× bare in instructions` for a guard bar, when counted.
fn instruction_ratio(results: &Results, row: &guards::Row) -> String {
    let Some(Ok(counts)) = &results.guard_counts else {
        return String::new();
    };
    let of = |v: &str| callgrind::guard_count(counts, row.threads, v);
    match (of(&row.variant), of("bare")) {
        (Some(v), Some(bare)) if row.variant != "bare" => {
            format!("; {:.2}× bare in instructions", v / bare)
        }
        _ => String::new(),
    }
}

fn guard_panel(results: &Results, area: &Area<'_>) -> Fallible {
    let caption = "1. Guard enter+leave, ns (lower is better)";
    let rows = match &results.guards {
        Some(Ok(rows)) if !rows.is_empty() => rows,
        Some(Err(error)) => return empty(area, caption, &format!("not measured: {error}")),
        _ => return empty(area, caption, "not run"),
    };
    let mut variants: Vec<String> = Vec::new();
    for row in rows {
        if !variants.contains(&row.variant) {
            variants.push(row.variant.clone());
        }
    }
    let names: Vec<String> = variants
        .iter()
        .map(|v| report::guard_label(v).replace('`', ""))
        .collect();
    // Room for the whiskers, unless one is so long that it would squash
    // the bars: those are cut at the edge.
    let medians = rows.iter().map(|r| r.ns.median).fold(1.0, f64::max);
    let whiskers = rows.iter().map(|r| r.ns.max).fold(1.0, f64::max);
    let top = whiskers.min(medians * 2.5) * 1.2;
    let label_at = |x: f64| x.min(top * 0.88) + top * 0.01;
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(230)
        .build_cartesian_2d(0f64..top, -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(whole_labels(-0.5, n as f64 - 0.5))
        .y_label_formatter(&|y| name_at(&names, *y))
        .x_desc("ns per enter+leave")
        .draw()?;
    for (threads, offset, color) in [(1usize, 0.17, EXIT_COLORS[0]), (2, -0.17, EXIT_COLORS[1])] {
        let bars: Vec<(f64, guards::Row)> = rows
            .iter()
            .filter(|r| r.threads == threads)
            .filter_map(|r| {
                let i = variants.iter().position(|v| *v == r.variant)?;
                Some((row_y(i, n) + offset, r.clone()))
            })
            .collect();
        chart
            .draw_series(
                bars.iter()
                    .map(|(y, r)| bar(*y, 0.0, r.ns.median, 0.3, color)),
            )?
            .label(format!(
                "{threads} thread{}",
                if threads == 1 { "" } else { "s" }
            ))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        for (y, r) in &bars {
            chart.draw_series(whisker(*y, r.ns.min, r.ns.max.min(top), 0.15))?;
            chart.draw_series(std::iter::once(label(
                format!("{:.1}{}", r.ns.median, instruction_ratio(results, r)),
                label_at(r.ns.max),
                *y,
            )))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .draw()?;
    Ok(())
}

/// One row of the serving panel: its label, the server, and its ratios to
/// the baseline (request rate and CPU on the wall clock, instructions).
type ServingPoint = (
    String,
    String,
    Option<Summary>,
    Option<Summary>,
    Option<f64>,
);

fn serving_panel(results: &Results, area: &Area<'_>) -> Fallible {
    let caption = "2. Serving, relative to the same server without shutdown code";
    if results.serving.is_none() && results.serving_counts.is_none() {
        return empty(area, caption, "not run");
    }
    let counts = match &results.serving_counts {
        Some(Ok(rows)) => rows.as_slice(),
        _ => &[],
    };
    let instructions = |server: &str| {
        counts
            .iter()
            .find(|c| {
                c.server == server
                    && c.server != c.baseline
                    && c.protocol == crate::callgrind::Protocol::Http1
            })
            .and_then(|c| c.ratio())
    };
    let mut points: Vec<ServingPoint> = results
        .serving
        .iter()
        .flatten()
        .filter(|r| r.server != r.baseline)
        .filter_map(|r| {
            let rps = r.ratio();
            let instr = instructions(&r.server);
            (rps.is_some() || instr.is_some()).then(|| {
                (
                    format!("{} / {}", r.server, r.baseline),
                    r.server.clone(),
                    rps,
                    r.cpu_ratio(),
                    instr,
                )
            })
        })
        .collect();
    for c in counts.iter().filter(|c| c.server != c.baseline) {
        if !points.iter().any(|p| p.1 == c.server)
            && let Some(ratio) = c.ratio()
        {
            points.push((
                format!("{} / {}", c.server, c.baseline),
                c.server.clone(),
                None,
                None,
                Some(ratio),
            ));
        }
    }
    if points.is_empty() {
        return empty(area, caption, "no server measured against a baseline");
    }
    let names: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    let lows = || {
        points.iter().flat_map(|p| {
            [p.2.map(|s| s.min), p.3.map(|s| s.min), p.4]
                .into_iter()
                .flatten()
        })
    };
    let highs = || {
        points.iter().flat_map(|p| {
            [p.2.map(|s| s.max), p.3.map(|s| s.max), p.4]
                .into_iter()
                .flatten()
        })
    };
    // A wild round stretches its whisker, not the axis: whiskers are cut
    // at ±40 %.
    let lo = lows().fold(report::SERVING_RATIO, f64::min).max(0.6) - 0.03;
    let hi = highs()
        .fold(report::SERVING_INSTRUCTIONS, f64::max)
        .min(1.4)
        + 0.08;
    let cut = |v: f64| v.clamp(lo, hi);
    let label_at = |x: f64| cut(x).min(hi - (hi - lo) * 0.09) + (hi - lo) * 0.01;
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(280)
        .build_cartesian_2d(lo..hi, -LEGEND_ROOM..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(whole_labels(-LEGEND_ROOM, n as f64 - 0.5))
        .y_label_formatter(&|y| name_at(&names, *y))
        .x_label_formatter(&|x| format!("{x:.2}"))
        .x_desc("ratio to the baseline; wall clock: median with min-max over rounds")
        .draw()?;
    chart
        .draw_series(dashed(
            report::SERVING_INSTRUCTIONS,
            -LEGEND_ROOM,
            n as f64 - 0.5,
            GOAL,
        ))?
        .label(format!(
            "goal for ours: instructions ≤ {}",
            report::SERVING_INSTRUCTIONS
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], GOAL.stroke_width(2)));
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, -LEGEND_ROOM), (1.0, n as f64 - 0.5)],
        BLACK.mix(0.4).stroke_width(1),
    )))?;
    let mut legend = [true, true, true];
    for (i, (_, server, rps, cpu, instr)) in points.iter().enumerate() {
        let y = row_y(i, n);
        let color = color_of(results, server);
        if let Some(instr) = instr {
            let mark = chart.draw_series(std::iter::once(Rectangle::new(
                [
                    (cut(*instr) - (hi - lo) * 0.006, y + 0.3),
                    (cut(*instr) + (hi - lo) * 0.006, y + 0.14),
                ],
                color.filled(),
            )))?;
            if std::mem::take(&mut legend[0]) {
                mark.label("instructions per request (decides; lower is better)")
                    .legend(|(x, y)| {
                        Rectangle::new([(x + 1, y - 5), (x + 11, y + 5)], BLACK.filled())
                    });
            }
            chart.draw_series(std::iter::once(label(
                format!("{instr:.3}"),
                label_at(*instr),
                y + 0.22,
            )))?;
        }
        if let Some(rps) = rps {
            chart.draw_series(whisker(y, cut(rps.min), cut(rps.max), 0.12))?;
            let dot = chart.draw_series(std::iter::once(Circle::new(
                (cut(rps.median), y),
                6,
                color.filled(),
            )))?;
            if std::mem::take(&mut legend[1]) {
                dot.label("req/s, wall clock, noisy (higher is better)")
                    .legend(|(x, y)| Circle::new((x + 6, y), 5, BLACK.filled()));
            }
            chart.draw_series(std::iter::once(label(
                format!("{:.3}", rps.median),
                label_at(rps.max),
                y,
            )))?;
        }
        if let Some(cpu) = cpu {
            chart.draw_series(whisker(y - 0.22, cut(cpu.min), cut(cpu.max), 0.12))?;
            let mark = chart.draw_series(std::iter::once(TriangleMarker::new(
                (cut(cpu.median), y - 0.22),
                7,
                color.filled(),
            )))?;
            if std::mem::take(&mut legend[2]) {
                mark.label("server CPU per request, wall clock, noisy (lower is better)")
                    .legend(|(x, y)| TriangleMarker::new((x + 6, y), 6, BLACK.filled()));
            }
            chart.draw_series(std::iter::once(label(
                format!("{:.3}", cpu.median),
                label_at(cpu.max),
                y - 0.22,
            )))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .draw()?;
    Ok(())
}

fn exit_panel(results: &Results, area: &Area<'_>) -> Fallible {
    let caption = "3-5. Exit latency, ms, log scale (lower is better)";
    let mut servers: Vec<String> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let busy = &results.settings.busy;
    let point = |server: &str, latencies: &[f64], failed: usize| Point {
        server: server.to_owned(),
        latency: Summary::of(latencies),
        failed,
        runs: latencies.len() + failed,
    };
    for (name, color, rows) in [
        (
            format!("after the last response ({} in flight)", busy.in_flight),
            EXIT_COLORS[0],
            &results.busy,
        ),
        (
            "idle, no connection: from SIGTERM".to_owned(),
            EXIT_COLORS[2],
            &results.idle,
        ),
        (
            "idle, a keep-alive connection open: from SIGTERM".to_owned(),
            EXIT_COLORS[3],
            &results.idle_keep_alive,
        ),
    ] {
        let points = rows
            .iter()
            .flatten()
            .map(|r| point(&r.server, &r.latencies, r.failures.len()))
            .collect();
        series.push((name, color, points));
    }
    let n_scale = results.settings.scale.connections;
    let at_scale = results
        .scale
        .iter()
        .flatten()
        .map(|r| {
            // A run in which not every request got its 200 counts as failed.
            let (good, bad): (Vec<&scale::Sample>, Vec<&scale::Sample>) =
                r.samples.iter().partition(|s| s.ok == n_scale);
            let latencies: Vec<f64> = good
                .iter()
                .map(|s| s.latency_ms)
                .filter(|l| !l.is_nan())
                .collect();
            point(&r.server, &latencies, r.failures.len() + bad.len())
        })
        .collect();
    series.insert(
        1,
        (
            format!(
                "after the last response ({} in flight)",
                report::count(n_scale)
            ),
            EXIT_COLORS[1],
            at_scale,
        ),
    );
    for (_, _, points) in &series {
        for p in points {
            if !servers.contains(&p.server) {
                servers.push(p.server.clone());
            }
        }
    }
    if servers.is_empty() {
        return empty(area, caption, "not run");
    }
    let floor = 0.01;
    let top = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().filter_map(|p| Some(p.latency?.max)))
        .fold(100.0, f64::max)
        * 4.0;
    let n = servers.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(180)
        .build_cartesian_2d(
            (floor..top).log_scale(),
            -0.5f64..(n as f64 - 0.5 + EXIT_LEGEND_ROOM),
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(whole_labels(-0.5, n as f64 - 0.5 + EXIT_LEGEND_ROOM))
        .y_label_formatter(&|y| name_at(&servers, *y))
        .x_label_formatter(&|x| report::ms(*x))
        .x_desc("ms, median with min-max (values at or below 0 drawn at the left edge)")
        .draw()?;
    for (bound, text) in [
        (
            report::EXIT_AFTER_LAST_MS,
            "goal for ours after the last: 5 ms",
        ),
        (report::EXIT_IDLE_MS, "goal for ours idle: 10 ms"),
    ] {
        chart
            .draw_series(dashed(bound, -0.5, n as f64 - 0.5 + EXIT_LEGEND_ROOM, GOAL))?
            .label(text)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], GOAL.stroke_width(2)));
    }
    let clamp = |v: f64| v.max(floor);
    for (k, (name, color, points)) in series.iter().enumerate() {
        let color = *color;
        let offset = 0.3 - 0.2 * k as f64;
        let placed: Vec<(f64, &Point)> = points
            .iter()
            .filter_map(|p| {
                let i = servers.iter().position(|x| *x == p.server)?;
                Some((row_y(i, n) + offset, p))
            })
            .collect();
        chart
            .draw_series(
                placed.iter().filter_map(|(y, p)| {
                    Some(bar(*y, floor, clamp(p.latency?.median), 0.17, color))
                }),
            )?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        for (y, p) in &placed {
            let failed = if p.failed == 0 {
                String::new()
            } else {
                format!(" ({} of {} runs failed)", p.failed, p.runs)
            };
            match p.latency {
                Some(s) => {
                    chart.draw_series(whisker(*y, clamp(s.min), clamp(s.max), 0.1))?;
                    chart.draw_series(std::iter::once(label(
                        format!("{}{failed}", report::ms(s.median)),
                        clamp(s.max) * 1.15,
                        *y,
                    )))?;
                }
                None => {
                    chart.draw_series(std::iter::once(label(
                        format!("every run failed{failed}"),
                        floor * 1.15,
                        *y,
                    )))?;
                }
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .draw()?;
    Ok(())
}

fn scale_panel(results: &Results, area: &Area<'_>) -> Fallible {
    let n_conn = results.settings.scale.connections;
    let caption = format!(
        "5. Scale: peak RSS with {} requests in flight, MiB",
        report::count(n_conn)
    );
    let Some(rows) = &results.scale else {
        return empty(area, &caption, "not run");
    };
    let measured: Vec<(&scale::Row, Summary)> = rows
        .iter()
        .filter_map(|r| {
            let rss: Vec<f64> = r
                .samples
                .iter()
                .map(|s| s.peak_rss_kib as f64 / 1024.0)
                .collect();
            Some((r, Summary::of(&rss)?))
        })
        .collect();
    if measured.is_empty() {
        return empty(area, &caption, "no run completed");
    }
    let names: Vec<String> = measured.iter().map(|(r, _)| r.server.clone()).collect();
    let top = measured.iter().map(|(_, s)| s.max).fold(1.0, f64::max) * 1.6;
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(&caption, (FONT, 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(180)
        .build_cartesian_2d(0f64..top, -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(whole_labels(-0.5, n as f64 - 0.5))
        .y_label_formatter(&|y| name_at(&names, *y))
        .x_desc(
            "MiB, median with min-max (lower is better); runs in which every request got its 200",
        )
        .draw()?;
    for (i, (row, s)) in measured.iter().enumerate() {
        let y = row_y(i, n);
        chart.draw_series(std::iter::once(bar(
            y,
            0.0,
            s.median,
            0.5,
            color_of(results, &row.server),
        )))?;
        chart.draw_series(whisker(y, s.min, s.max, 0.25))?;
        let complete = row.samples.iter().filter(|x| x.ok == n_conn).count();
        chart.draw_series(std::iter::once(label(
            format!(
                "{:.0} MiB; {complete}/{} runs all 200",
                s.median,
                row.samples.len() + row.failures.len()
            ),
            s.max + top * 0.01,
            y,
        )))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_whatever_was_measured() {
        let path =
            std::env::temp_dir().join(format!("graceful-bench-chart-{}.svg", std::process::id()));
        let mut results = report::example();
        draw(&results, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("graceful-tokio"));
        // Nothing measured at all still draws, with every panel saying so.
        results.guards = None;
        results.serving = None;
        results.busy = None;
        results.idle = None;
        results.scale = None;
        draw(&results, &path).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("not run"));
        let _ = std::fs::remove_file(&path);
    }
}
