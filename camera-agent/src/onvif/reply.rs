//! What the agent reads out of a camera's ONVIF answers: plain functions from the reply's
//! text, so hostile or broken replies are tested (and fuzzed) without a camera.

use super::client::{Position, Preset, Status};
use crate::error::Error;

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, Error> {
    roxmltree::Document::parse(xml).map_err(|e| Error::Camera(format!("not XML: {e}")))
}

/// The first element named `name` (any namespace).
fn first<'a>(doc: &'a roxmltree::Document<'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The first child element of `node` named `name`.
fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The services of `GetCapabilities`: the PTZ service's address (none: the camera cannot pan
/// or tilt) and the media service's.
pub fn service_addresses(xml: &str) -> Result<(String, String), Error> {
    let doc = parse(xml)?;
    let xaddr = |service: &str| {
        first(&doc, service)
            .and_then(|s| child(s, "XAddr"))
            .and_then(|x| x.text())
            .map(str::to_owned)
    };
    let ptz = xaddr("PTZ").ok_or_else(|| {
        Error::Config("this camera has no pan-tilt (no ONVIF PTZ service)".into())
    })?;
    let media = xaddr("Media").ok_or_else(|| Error::Camera("no media service".into()))?;
    Ok((ptz, media))
}

/// The first media profile's token, from `GetProfiles`.
pub fn profile_token(xml: &str) -> Result<String, Error> {
    first(&parse(xml)?, "Profiles")
        .and_then(|p| p.attribute("token"))
        .map(str::to_owned)
        .ok_or_else(|| Error::Camera("no media profile".into()))
}

/// The head's position and whether it moves, from `GetStatus`.
pub fn status(xml: &str) -> Result<Status, Error> {
    let doc = parse(xml)?;
    let position = first(&doc, "Position").and_then(|p| child(p, "PanTilt"));
    let coord = |a: &str| {
        position
            .and_then(|p| p.attribute(a))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| Error::Camera("the status has no position".into()))
    };
    let moving = first(&doc, "MoveStatus")
        .and_then(|m| m.children().find(|c| c.is_element()))
        .and_then(|c| c.text())
        .is_some_and(|t| t.trim() == "MOVING");
    Ok(Status {
        position: Position {
            pan: coord("x")?,
            tilt: coord("y")?,
        },
        moving,
    })
}

/// The new preset's token, from `SetPreset`.
pub fn preset_token(xml: &str) -> Result<String, Error> {
    first(&parse(xml)?, "PresetToken")
        .and_then(|t| t.text())
        .map(str::to_owned)
        .ok_or_else(|| Error::Camera("SetPreset gave no token".into()))
}

/// The camera's presets, from `GetPresets` (a preset without a name is named by its token).
pub fn presets(xml: &str) -> Result<Vec<Preset>, Error> {
    let doc = parse(xml)?;
    Ok(doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Preset")
        .filter_map(|p| {
            let token = p.attribute("token")?.to_owned();
            let name = child(p, "Name")
                .and_then(|n| n.text())
                .unwrap_or(&token)
                .to_owned();
            Some(Preset { token, name })
        })
        .collect())
}

/// A SOAP fault's reason text, if the reply is one.
pub fn fault_reason(xml: &str) -> Option<String> {
    let doc = parse(xml).ok()?;
    first(&doc, "Text")
        .and_then(|t| t.text())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_and_hostile_replies_are_errors() {
        for xml in [
            "",
            "<",
            "not xml",
            "<a><b></a>",
            "<!DOCTYPE x [<!ENTITY e \"e\">]><x>&e;</x>",
        ] {
            assert!(status(xml).is_err(), "{xml}");
            assert!(service_addresses(xml).is_err(), "{xml}");
            assert!(profile_token(xml).is_err(), "{xml}");
            assert!(preset_token(xml).is_err(), "{xml}");
        }
        let nan = r#"<s><Position><PanTilt x="NaN" y="inf"/></Position></s>"#;
        assert!(status(nan).is_err(), "a position must be a number");
        let ok = r#"<s><Position><PanTilt x="0.5" y="-1"/></Position><MoveStatus><PanTilt>MOVING</PanTilt></MoveStatus></s>"#;
        let s = status(ok).unwrap();
        assert_eq!(
            (s.position.pan, s.position.tilt, s.moving),
            (0.5, -1.0, true)
        );
        let presets = presets(
            r#"<r><Preset token="1"><Name>Door</Name></Preset><Preset token="2"/><Preset/></r>"#,
        )
        .unwrap();
        assert_eq!(
            presets,
            [
                Preset {
                    token: "1".into(),
                    name: "Door".into()
                },
                Preset {
                    token: "2".into(),
                    name: "2".into()
                }
            ]
        );
    }
}
