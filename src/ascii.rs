//! Terminal rendering of a visual derivative (a small grayscale thumbnail) as ASCII art.

use image::GrayImage;

/// Dark to light.
const RAMP: &[u8] = b"@%#*+=-:. ";

/// Renders `img` in `cols` columns (rows are halved, terminal cells being about twice as tall as wide), averaging
/// the pixels of each cell. Returns one string per row.
pub fn render(img: &GrayImage, cols: u32) -> Vec<String> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || cols == 0 {
        return Vec::new();
    }
    let cols = cols.min(w);
    let rows = (h * cols / w / 2).max(1);
    let mut out = Vec::with_capacity(rows as usize);
    for r in 0..rows {
        let (y0, y1) = (r * h / rows, ((r + 1) * h / rows).max(r * h / rows + 1));
        let mut line = String::with_capacity(cols as usize);
        for c in 0..cols {
            let (x0, x1) = (c * w / cols, ((c + 1) * w / cols).max(c * w / cols + 1));
            let (mut sum, mut n) = (0u64, 0u64);
            for y in y0..y1.min(h) {
                for x in x0..x1.min(w) {
                    sum += u64::from(img.get_pixel(x, y).0[0]);
                    n += 1;
                }
            }
            let mean = sum.checked_div(n).unwrap_or(0);
            let idx = (mean as usize * (RAMP.len() - 1)) / 255;
            line.push(char::from(*RAMP.get(idx).unwrap_or(&b' ')));
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_and_light_halves_render_differently() {
        let img = GrayImage::from_fn(64, 64, |x, _| image::Luma([if x < 32 { 0 } else { 255 }]));
        let rows = render(&img, 32);
        assert_eq!(rows.len(), 16);
        for r in &rows {
            assert_eq!(r.len(), 32);
            assert!(r.starts_with("@@@@"), "{r}");
            assert!(r.ends_with("    "), "{r}");
        }
    }
}
