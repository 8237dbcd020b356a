//! SVG line charts of a benchmark's curves (plotters, SVG backend: no fonts needed, the
//! viewer renders the text).

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// One system's curve: (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A chart: its title, axis names and curves.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
    /// The top of the y axis; points above it are off the chart. `None`: fits every point.
    pub y_max: Option<f64>,
    pub series: Vec<Series<'a>>,
}

const COLOURS: [RGBColor; 3] = [RGBColor(0, 114, 178), RGBColor(213, 94, 0), BLACK];

/// Draws `charts` side by side into one SVG file.
pub fn side_by_side(path: &Path, charts: &[Chart]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("plot: {e}");
    let width = 520 * charts.len() as u32;
    let root = SVGBackend::new(path, (width, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, chart) in root.split_evenly((1, charts.len())).iter().zip(charts) {
        let points = chart.series.iter().flat_map(|s| &s.points);
        let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max);
        let y_max = chart
            .y_max
            .unwrap_or_else(|| points.map(|p| p.1).fold(0.0, f64::max) * 1.15 + f64::EPSILON);
        let mut ctx = ChartBuilder::on(area)
            .caption(chart.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max * 1.05, 0.0..y_max)
            .map_err(|e| err(&e))?;
        ctx.configure_mesh()
            .x_desc(chart.x)
            .y_desc(chart.y)
            .draw()
            .map_err(|e| err(&e))?;
        for (series, colour) in chart.series.iter().zip(COLOURS) {
            ctx.draw_series(LineSeries::new(
                series.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(series.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
            ctx.draw_series(
                series
                    .points
                    .iter()
                    .map(|&p| Circle::new(p, 3, colour.filled())),
            )
            .map_err(|e| err(&e))?;
        }
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
