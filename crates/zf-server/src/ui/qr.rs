//! QR codes drawn on the server as inline SVG: no script, no image request and no `data:`
//! URI, so the page's Content-Security-Policy (`default-src 'none'`) stays as it is. Colours
//! are presentation attributes, which `style-src` does not govern.

use maud::{html, Markup};
use qrcode::{Color, EcLevel, QrCode};

/// The quiet zone around the code, in modules, as ISO/IEC 18004 asks.
const QUIET: usize = 4;

/// `data` as a QR code, one SVG path of dark modules; `None` if it does not fit a QR code.
pub fn svg(data: &str, label: &str) -> Option<Markup> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let mut path = String::new();
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (x, y) = (i % width + QUIET, i / width + QUIET);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    let size = width + 2 * QUIET;
    let view_box = format!("0 0 {size} {size}");
    Some(html! {
        svg.qr xmlns="http://www.w3.org/2000/svg" viewBox=(view_box) width="220" height="220"
            role="img" aria-label=(label) shape-rendering="crispEdges" {
            rect width=(size) height=(size) fill="#fff" {}
            path d=(path) fill="#000" {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otpauth_uri_becomes_one_inline_svg_without_styles_or_references() {
        let uri = "otpauth://totp/Zhangfang:lisi?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Zhangfang&algorithm=SHA1&digits=6&period=30";
        let markup = svg(uri, "QR").unwrap().into_string();
        assert!(markup.starts_with("<svg class=\"qr\""), "{markup}");
        assert!(markup.contains("<path d=\"M"));
        for forbidden in ["style", "href", "<script", "data:"] {
            assert!(!markup.contains(forbidden), "{forbidden} in {markup}");
        }
        assert!(svg(&"x".repeat(5000), "QR").is_none());
    }
}
