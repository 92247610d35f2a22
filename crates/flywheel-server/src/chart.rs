//! Charts drawn on the server: a series in, SVG path data and rectangles
//! out, in a fixed coordinate box (`viewBox="0 0 W H"`) that the page
//! scales to its width. Pure; `templates/chart.html` draws the result.
//! No script, no inline style (the CSP forbids both): colours are SVG
//! presentation attributes.

/// The drawing box (SVG user units).
pub const W: f64 = 600.0;
pub const H: f64 = 160.0;
/// Room left of the plot for the scale's numbers.
pub const LEFT: f64 = 36.0;
/// Room under the plot for the time labels.
pub const BOTTOM: f64 = 18.0;

/// A rectangle in the drawing box, rounded for short markup.
#[derive(Clone, Debug, PartialEq)]
pub struct Rect {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    /// A tooltip (`<title>`).
    pub title: String,
}

fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Maps time and value into the plot area.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub t0: i64,
    pub t1: i64,
    pub y_max: f64,
}

impl Scale {
    pub fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        let f = ((t - self.t0) as f64 / span).clamp(0.0, 1.0);
        LEFT + f * (W - LEFT)
    }

    pub fn y(&self, v: f64) -> f64 {
        let top = self.y_max.max(f64::MIN_POSITIVE);
        let f = (v / top).clamp(0.0, 1.0);
        (H - BOTTOM) - f * (H - BOTTOM)
    }
}

/// A round top for the value axis: 1, 2, 5 × 10ⁿ at or above `v` (at
/// least 1, so an idle series draws on the floor, not across the middle).
pub fn nice_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Path data of a line through `points` (time, value); a `None` value
/// breaks the line (the next point starts a new piece). A lone point is a
/// short flat stroke so that it shows.
pub fn line(points: &[(i64, Option<f64>)], s: Scale) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    let mut piece_len = 0;
    for (t, v) in points {
        let Some(v) = v else {
            if pen_down && piece_len == 1 {
                d.push_str(" h2");
            }
            pen_down = false;
            continue;
        };
        let (x, y) = (n(s.x(*t)), n(s.y(*v)));
        if pen_down {
            d.push_str(&format!(" L{x} {y}"));
            piece_len += 1;
        } else {
            if !d.is_empty() {
                d.push(' ');
            }
            d.push_str(&format!("M{x} {y}"));
            pen_down = true;
            piece_len = 1;
        }
    }
    if pen_down && piece_len == 1 {
        d.push_str(" h2");
    }
    d
}

/// One bar per (bucket start, value), `width` seconds wide.
pub fn bars(points: &[(i64, f64)], width: i64, s: Scale, what: &str) -> Vec<Rect> {
    points
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(t, v)| {
            let x0 = s.x(*t);
            let x1 = s.x(t + width);
            let y = s.y(*v);
            Rect {
                x: n(x0),
                y: n(y),
                w: n((x1 - x0 - 1.0).max(1.0)),
                h: n((H - BOTTOM) - y),
                title: format!("{} {what}", n(*v)),
            }
        })
        .collect()
}

/// A shaded band from `from` to `to` (clipped to the plot), or `None`
/// when it lies outside.
pub fn band(from: i64, to: Option<i64>, s: Scale, title: String) -> Option<Rect> {
    let to = to.unwrap_or(s.t1);
    if to < s.t0 || from > s.t1 || to < from {
        return None;
    }
    let (x0, x1) = (s.x(from), s.x(to));
    Some(Rect {
        x: n(x0),
        y: "0".into(),
        w: n((x1 - x0).max(1.0)),
        h: n(H - BOTTOM),
        title,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Scale = Scale {
        t0: 0,
        t1: 100,
        y_max: 10.0,
    };

    #[test]
    fn an_empty_series_draws_nothing() {
        assert_eq!(line(&[], S), "");
        assert_eq!(line(&[(10, None), (20, None)], S), "");
        assert!(bars(&[], 60, S, "jobs").is_empty());
    }

    #[test]
    fn one_point_is_a_visible_stroke() {
        assert_eq!(line(&[(0, Some(10.0))], S), "M36 0 h2");
    }

    #[test]
    fn values_scale_into_the_plot_and_clamp() {
        // Bottom-left is (LEFT, H - BOTTOM); the top is y = 0.
        assert_eq!(
            line(&[(0, Some(0.0)), (50, Some(5.0)), (100, Some(99.0))], S),
            "M36 142 L318 71 L600 0"
        );
        // Times outside the range sit on its edges.
        assert_eq!(
            line(&[(-5, Some(0.0)), (500, Some(0.0))], S),
            "M36 142 L600 142"
        );
    }

    #[test]
    fn a_null_max_breaks_the_line() {
        let d = line(
            &[(0, Some(4.0)), (25, Some(4.0)), (50, None), (75, Some(4.0))],
            S,
        );
        assert_eq!(d, "M36 85.2 L177 85.2 M459 85.2 h2");
    }

    #[test]
    fn bars_stand_on_the_floor_and_skip_zeroes() {
        let b = bars(&[(0, 5.0), (50, 0.0)], 10, S, "jobs");
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].y.as_str(), b[0].h.as_str()), ("71", "71"));
        assert_eq!(b[0].title, "5 jobs");
    }

    #[test]
    fn bands_clip_to_the_range() {
        let b = band(50, None, S, "paused".into()).expect("inside");
        assert_eq!((b.x.as_str(), b.w.as_str()), ("318", "282"));
        assert!(band(200, Some(300), S, String::new()).is_none());
        assert!(band(-50, Some(-10), S, String::new()).is_none());
    }

    #[test]
    fn the_scale_tops_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(10.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }
}
