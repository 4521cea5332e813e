use super::*;

fn op(name: &str, node: &str, phase: &str, minute: i64) -> TimedOperation {
    let at = |m: i64| Timestamp::from_second(1_795_000_000 + m * 60).ok();
    TimedOperation {
        path: format!("velero/podvolumerestores/{name}.yaml"),
        kind: "PodVolumeRestore".into(),
        name: name.into(),
        node: Some(node.into()),
        pod: None,
        phase: phase.into(),
        created: at(minute),
        started: at(minute + 1),
        completed: (phase == "Completed").then(|| at(minute + 3)).flatten(),
    }
}

fn input(ops: &[TimedOperation]) -> TimelineInput<'_> {
    TimelineInput {
        start: Timestamp::from_second(1_795_000_000).unwrap(),
        end: Timestamp::from_second(1_795_000_000 + 3600).unwrap(),
        operations: ops,
        events: &[],
        log_hits: &[],
    }
}

#[test]
fn every_operation_is_a_bar_on_its_nodes_lane_with_its_phase_in_words() {
    let ops = vec![
        op("a", "node-1", "Completed", 0),
        op("b", "node-2", "Failed", 5),
        op("c", "node-1", "InProgress", 10),
    ];
    let (svg, drawn) = svg(&input(&ops), 100);
    assert_eq!(drawn.bars, 3);
    assert_eq!(drawn.lanes, 2);
    assert_eq!(svg.matches(r#"<g class="op "#).count(), 3);
    assert!(svg.contains(
        r#"<g class="op failed" data-kind="PodVolumeRestore" data-node="node-2" tabindex="0""#
    ));
    assert!(svg.contains("PodVolumeRestore b on node-2: Failed"));
    // A completed bar takes no focus; the others do.
    assert_eq!(svg.matches(r#"tabindex="0""#).count(), 2);
}

#[test]
fn two_thousand_operations_on_two_hundred_nodes_keep_forty_lanes() {
    let ops: Vec<TimedOperation> = (0..2000)
        .map(|i| {
            op(
                &format!("r-{i}"),
                &format!("node-{}", i % 200),
                if i % 50 == 0 { "Failed" } else { "Completed" },
                i % 50,
            )
        })
        .collect();
    let (svg, drawn) = svg(&input(&ops), 5000);
    assert_eq!(drawn.bars, 2000);
    assert_eq!(drawn.lanes, MAX_LANES);
    assert_eq!(drawn.grouped_nodes, 200 - (MAX_LANES - 1));
    assert!(svg.contains(&format!("{} other nodes", 200 - (MAX_LANES - 1))));
    // The nodes with failures get lanes of their own first.
    assert!(svg.contains(">node-0 (10/10)<"));
}

#[test]
fn beyond_the_limit_completed_bars_go_first_and_are_counted() {
    let ops = vec![
        op("a", "n", "Completed", 0),
        op("b", "n", "Failed", 1),
        op("c", "n", "Completed", 2),
    ];
    let (svg, drawn) = svg(&input(&ops), 1);
    assert_eq!((drawn.bars, drawn.left_out), (1, 2));
    assert!(svg.contains("PodVolumeRestore b on n: Failed"));
}

#[test]
fn hostile_names_are_escaped_in_text_and_attributes() {
    let ops = vec![op("<script>x</script>", "\"><img src=x>", "Failed", 0)];
    let (svg, _) = svg(&input(&ops), 10);
    assert!(!svg.contains("<script>"));
    assert!(!svg.contains("<img"));
    assert!(svg.contains("&lt;script&gt;"));
}

#[test]
fn a_span_under_four_seconds_labels_its_ticks_apart() {
    let ops = vec![op("a", "node-1", "Completed", 0)];
    let start = Timestamp::from_second(1_795_000_000).unwrap();
    let short = TimelineInput {
        end: Timestamp::from_millisecond(start.as_millisecond() + 1_200).unwrap(),
        ..input(&ops)
    };
    let (svg_short, _) = svg(&short, 10);
    let labels: Vec<&str> = svg_short
        .split(r#"y="14">"#)
        .skip(1)
        .filter_map(|t| t.split('<').next())
        .collect();
    let distinct: std::collections::BTreeSet<_> = labels.iter().collect();
    assert_eq!((labels.len(), distinct.len()), (5, 5), "{labels:?}");
    let (svg_hour, _) = svg(&input(&ops), 10);
    assert!(svg_hour.contains(r#"y="14">11:06:40<"#), "{svg_hour}");
}
