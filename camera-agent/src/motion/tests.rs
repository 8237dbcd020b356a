//! The detector's rules, each on synthetic pictures at 10 a second: a still street with
//! sensor noise and whatever a test adds to it, and for the view that moves on its own and
//! night mode (rules 7 and 8) the labelled clips of `eyeward_camera_sim::clips`.

use super::*;
use eyeward_camera_sim::clips::{self, Clip};

const W: usize = 320;
const H: usize = 180;
const STEP: Duration = Duration::from_millis(100);
/// How colourful the street is by day (see `colourfulness`).
const DAYLIGHT: u8 = 20;

/// A street-like background with texture, plus deterministic noise of ±`noise` levels.
struct Scene {
    base: Vec<u8>,
    noise: u8,
    seed: u64,
}

impl Scene {
    fn new(noise: u8) -> Scene {
        let base = (0..W * H)
            .map(|i| {
                let (x, y) = (i % W, i / W);
                (60 + (x / 20 % 3) * 30 + (y / 30 % 2) * 20) as u8
            })
            .collect();
        Scene {
            base,
            noise,
            seed: 0x9e37_79b9,
        }
    }

    /// The next picture: the background with fresh noise.
    fn picture(&mut self) -> Vec<u8> {
        let span = 2 * i16::from(self.noise) + 1;
        self.base
            .iter()
            .map(|&b| {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                let n = (self.seed % span as u64) as i16 - i16::from(self.noise);
                (i16::from(b) + n).clamp(0, 255) as u8
            })
            .collect()
    }
}

fn fill(p: &mut [u8], x: usize, y: usize, w: usize, h: usize, luma: u8) {
    for row in y..(y + h).min(H) {
        for col in x..(x + w).min(W) {
            p[row * W + col] = luma;
        }
    }
}

/// Runs `pictures` pictures through `d`, each made by `draw(index, picture)`; returns the
/// decisions with the index of the picture that produced them, and closes an open event.
fn run(
    d: &mut Detector,
    scene: &mut Scene,
    pictures: usize,
    mut draw: impl FnMut(usize, &mut [u8]),
) -> Vec<(usize, Decision)> {
    let mut out = Vec::new();
    for i in 0..pictures {
        let mut p = scene.picture();
        draw(i, &mut p);
        if let Some(decision) = d.process(&p, DAYLIGHT, STEP * i as u32) {
            out.push((i, decision));
        }
    }
    out.extend(d.finish().map(|e| (pictures, e)));
    out
}

fn detector(config: DetectorConfig) -> Detector {
    Detector::new(&config, W, H).expect("valid config")
}

fn events(decisions: &[(usize, Decision)]) -> Vec<MotionEvent> {
    decisions
        .iter()
        .filter_map(|(_, d)| match d {
            Decision::Ended(e) => Some(*e),
            Decision::Started { .. } => None,
        })
        .collect()
}

/// A person-sized figure (24×60 px of 320×180) walking across between pictures 20 and 60.
fn person(i: usize, p: &mut [u8]) {
    if (20..60).contains(&i) {
        let x = (i - 20) * W / 40;
        fill(p, x, 90, 24, 60, 20);
    }
}

#[test]
fn a_still_noisy_scene_gives_no_event() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(8), 200, |_, _| {});
    assert!(decisions.is_empty(), "{decisions:?}");
}

#[test]
fn a_person_crossing_gives_exactly_one_event_found_within_two_pictures() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 100, person);
    let started: Vec<_> = decisions
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Started { .. }))
        .collect();
    assert_eq!(started.len(), 1, "{decisions:?}");
    let (index, Decision::Started { since, motion, .. }) = started[0] else {
        unreachable!()
    };
    assert!(*index <= 21, "started at picture {index}");
    assert_eq!(*since, STEP * 20, "motion dated from its first picture");
    assert!(motion.bbox.y <= 90 && motion.bbox.y + motion.bbox.h >= 150);
    let ev = events(&decisions);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].start, STEP * 20);
    assert!(ev[0].end >= STEP * 55, "{:?}", ev[0]);
    assert!(ev[0].peak_score > 0.01 && ev[0].peak_score < 0.1);
}

#[test]
fn a_small_animal_below_the_minimum_area_gives_no_event() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 100, |i, p| {
        if (20..60).contains(&i) {
            fill(p, (i - 20) * 6, 160, 10, 8, 20);
        }
    });
    assert!(decisions.is_empty(), "{decisions:?}");
}

#[test]
fn lights_on_and_off_give_no_event() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 120, |i, p| {
        // A lamp lights two thirds of the picture, unevenly, from picture 30 to 80.
        if (30..80).contains(&i) {
            for (j, v) in p.iter_mut().enumerate() {
                if j % W < W * 2 / 3 {
                    *v = v.saturating_add(70 + (j % 7) as u8 * 5);
                }
            }
        }
    });
    assert!(decisions.is_empty(), "{decisions:?}");
}

#[test]
fn auto_exposure_drift_gives_no_event() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 100, |i, p| {
        let gain = (i as u8).min(60);
        for v in p.iter_mut() {
            *v = v.saturating_add(gain);
        }
    });
    assert!(decisions.is_empty(), "{decisions:?}");
}

#[test]
fn motion_during_a_lighting_change_is_caught_once_the_model_settles() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 100, |i, p| {
        if i >= 20 {
            for v in p.iter_mut() {
                *v = v.saturating_add(80);
            }
        }
        // The person walks in as the lights come on.
        if (20..60).contains(&i) {
            fill(p, (i - 20) * W / 40, 90, 24, 60, 30);
        }
    });
    let ev = events(&decisions);
    assert_eq!(ev.len(), 1, "{decisions:?}");
    let found = decisions
        .iter()
        .find_map(|(i, d)| matches!(d, Decision::Started { .. }).then_some(*i))
        .unwrap();
    assert!(
        found <= 20 + SETTLE_PICTURES as usize + 3,
        "found at {found}"
    );
}

#[test]
fn night_sensor_noise_and_rain_give_no_event() {
    let mut d = detector(DetectorConfig::default());
    assert!(run(&mut d, &mut Scene::new(14), 150, |_, _| {}).is_empty());
    let mut d = detector(DetectorConfig::default());
    let mut drop = 12345u64;
    let rain = run(&mut d, &mut Scene::new(3), 150, |_, p| {
        // Streaks: 400 short bright lines in random places every picture.
        for _ in 0..400 {
            drop = drop
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (x, y) = ((drop >> 20) as usize % W, (drop >> 40) as usize % (H - 4));
            fill(p, x, y, 1, 4, 200);
        }
    });
    assert!(rain.is_empty(), "{rain:?}");
}

#[test]
fn motion_inside_a_mask_is_ignored_and_outside_it_is_not() {
    // The right half of the picture is masked (a neighbour's window).
    let config = DetectorConfig {
        masks: vec![Polygon(vec![
            [0.5, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.5, 1.0],
        ])],
        ..Default::default()
    };
    let mut d = detector(config.clone());
    let masked = run(&mut d, &mut Scene::new(4), 100, |i, p| {
        if (20..60).contains(&i) {
            fill(p, W / 2 + (i - 20) * 3, 60, 24, 60, 20);
        }
    });
    assert!(masked.is_empty(), "{masked:?}");
    let mut d = detector(config);
    let open = run(&mut d, &mut Scene::new(4), 100, |i, p| {
        if (20..60).contains(&i) {
            fill(p, (i - 20) * 3, 60, 24, 60, 20);
        }
    });
    assert_eq!(events(&open).len(), 1, "{open:?}");
}

#[test]
fn at_a_preset_its_own_masks_apply_and_between_presets_the_general_ones() {
    // The left half is masked at preset "gate" only.
    let left = Polygon(vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]);
    let config = DetectorConfig {
        preset_masks: [("gate".to_owned(), vec![left])].into(),
        ..Default::default()
    };
    assert!(config.masks_at(None).is_empty());
    assert!(config.masks_at(Some("home")).is_empty());
    assert_eq!(config.masks_at(Some("gate")).len(), 1);
    let walk_left_half = |i: usize, p: &mut [u8]| {
        if (20..60).contains(&i) {
            fill(p, (i - 20) * 3, 60, 24, 60, 20);
        }
    };
    let mut d = detector(config.clone());
    d.set_masks(config.masks_at(Some("gate"))).unwrap();
    let at_gate = run(&mut d, &mut Scene::new(4), 100, walk_left_half);
    assert!(at_gate.is_empty(), "{at_gate:?}");
    let mut d = detector(config.clone());
    d.set_masks(config.masks_at(Some("gate"))).unwrap();
    d.set_masks(config.masks_at(None)).unwrap();
    let between = run(&mut d, &mut Scene::new(4), 100, walk_left_half);
    assert_eq!(events(&between).len(), 1, "{between:?}");
}

#[test]
fn a_pan_tilt_move_gives_no_event_and_the_new_view_is_learned() {
    let mut d = detector(DetectorConfig::default());
    let mut scene = Scene::new(4);
    let mut decisions = Vec::new();
    for i in 0..120 {
        // The head turns between pictures 30 and 50: the whole view slides, then stays.
        if i == 30 {
            d.set_head_moving(true);
        }
        if i == 50 {
            d.set_head_moving(false);
        }
        let shift = i.clamp(30, 50) - 30;
        let p: Vec<u8> = scene.picture();
        let moved: Vec<u8> = (0..W * H)
            .map(|j| p[(j / W) * W + (j % W + shift * 4) % W])
            .collect();
        decisions.extend(d.process(&moved, DAYLIGHT, STEP * i as u32));
    }
    assert!(decisions.is_empty(), "{decisions:?}");
}

/// The scene's view slid `shift` pixels left (and `down` pixels up), as a turning camera
/// sees it.
fn slid_view(p: &[u8], shift: usize, down: usize) -> Vec<u8> {
    (0..W * H)
        .map(|j| p[((j / W + down) % H) * W + (j % W + shift) % W])
        .collect()
}

#[test]
fn a_pan_nobody_reported_gives_no_event() {
    for (across, down) in [(2, 0), (0, 3), (3, 2)] {
        let mut d = detector(DetectorConfig::default());
        let mut scene = Scene::new(4);
        let mut decisions = Vec::new();
        for i in 0..120 {
            // The camera's own patrol turns it between pictures 30 and 50.
            let step = i.clamp(30, 50) - 30;
            let p = slid_view(&scene.picture(), step * across, step * down);
            decisions.extend(d.process(&p, DAYLIGHT, STEP * i as u32));
        }
        assert!(decisions.is_empty(), "pan {across},{down}: {decisions:?}");
    }
}

#[test]
fn a_large_figure_close_to_the_camera_is_motion_not_a_pan() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 100, |i, p| {
        // A fifth of the picture, walking past right in front of the lens.
        if (20..60).contains(&i) {
            fill(p, (i - 20) * 6, 30, 90, 130, 20);
        }
    });
    assert_eq!(events(&decisions).len(), 1, "{decisions:?}");
}

#[test]
fn a_one_picture_blip_gives_no_event() {
    let mut d = detector(DetectorConfig::default());
    let decisions = run(&mut d, &mut Scene::new(4), 60, |i, p| {
        if i == 30 {
            fill(p, 100, 60, 40, 80, 10);
        }
    });
    assert!(decisions.is_empty(), "{decisions:?}");
}

#[test]
fn a_second_crossing_within_the_cooldown_is_not_a_new_event() {
    let config = DetectorConfig {
        cooldown: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let walk = |from: usize| {
        move |i: usize, p: &mut [u8]| {
            if (from..from + 20).contains(&i) {
                fill(p, (i - from) * 12, 90, 24, 60, 20);
            }
        }
    };
    // Crossings at pictures 20 and 50 (3 s apart): one event.
    let mut d = detector(config.clone());
    let close = run(&mut d, &mut Scene::new(4), 120, |i, p| {
        walk(20)(i, p);
        walk(50)(i, p);
    });
    assert_eq!(events(&close).len(), 1, "{close:?}");
    // Crossings at pictures 20 and 150 (13 s apart): two.
    let mut d = detector(config);
    let apart = run(&mut d, &mut Scene::new(4), 200, |i, p| {
        walk(20)(i, p);
        walk(150)(i, p);
    });
    assert_eq!(events(&apart).len(), 2, "{apart:?}");
}

#[test]
fn sensitivity_sets_the_numbers_and_overrides_win() {
    let low = DetectorConfig {
        sensitivity: Sensitivity::Low,
        ..Default::default()
    };
    let high = DetectorConfig {
        sensitivity: Sensitivity::High,
        min_area: Some(0.05),
        ..Default::default()
    };
    assert!(low.tuning().unwrap().min_area > DetectorConfig::default().tuning().unwrap().min_area);
    assert_eq!(high.tuning().unwrap().min_area, 0.05);
    assert_eq!(high.tuning().unwrap().pixel_threshold, 12);
    let bad = DetectorConfig {
        min_area: Some(1.5),
        ..Default::default()
    };
    assert!(bad.tuning().is_err());
    let all_masked = DetectorConfig {
        masks: vec![Polygon(vec![
            [0.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.0, 1.0],
        ])],
        ..Default::default()
    };
    assert!(Detector::new(&all_masked, W, H).is_err());
}

/// Runs a labelled clip (`eyeward_camera_sim::clips`) through a default detector at 10
/// pictures a second: the times (s) at which events started.
fn starts(clip: &Clip) -> Vec<f64> {
    let mut d = detector(DetectorConfig::default());
    let mut started = Vec::new();
    for i in 0..(clip.seconds * 10.0) as u32 {
        let at = STEP * i;
        let p = clip.render(at.as_secs_f64(), W, H);
        let colour = colourfulness(&p.u, &p.v);
        if let Some(Decision::Started { at, .. }) = d.process(&p.y, colour, at) {
            started.push(at.as_secs_f64());
        }
    }
    started
}

/// The clips of views that change on their own whose names have `part` and which gave
/// events, with the times of those events.
fn false_events(part: &str) -> Vec<(String, Vec<f64>)> {
    let chosen: Vec<_> = clips::view_changes()
        .into_iter()
        .filter(|c| c.name.contains(part))
        .collect();
    assert!(!chosen.is_empty(), "no clip is named with {part:?}");
    chosen
        .iter()
        .map(|c| (c.name.clone(), starts(c)))
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

#[test]
fn pans_and_tilts_nobody_reported_give_no_event_at_any_speed_direction_or_start() {
    // 30 to 400 px/s, across, down and diagonally, starting at once and smoothly, over
    // textured, street, flat and dark ground, with and without a person standing there.
    let wrong = false_events(" pan ");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_zoom_gives_no_event() {
    let wrong = false_events("zoom");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn wind_shaking_the_camera_gives_no_event() {
    let wrong = false_events("shaken");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn switching_to_night_mode_gives_no_event() {
    let wrong = false_events("night mode");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_person_is_found_on_every_lit_ground_and_right_after_the_view_settles() {
    for clip in clips::people() {
        let found = starts(&clip);
        assert_eq!(found.len(), 1, "{}: {found:?}", clip.name);
        // From the walker's entry, or from the end of the settling that follows the view's
        // last move (its last picture, then SETTLE_PICTURES more), whichever is later.
        let settled = clip.view_settles().map_or(0.0, |end| {
            end + STEP.as_secs_f64() * f64::from(SETTLE_PICTURES + 1)
        });
        let from = clip.entry().expect("a walker").max(settled);
        assert!(
            found[0] - from <= 0.3,
            "{}: found at {:.1} s, {:.0} ms after {from:.1} s",
            clip.name,
            found[0],
            (found[0] - from) * 1000.0
        );
    }
}
