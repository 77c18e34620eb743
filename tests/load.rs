//! A bounded load test on loopback (it stops by itself): 200 deliveries of one click, 50 at a
//! time, and a burst of 50 distinct clicks at once. Exactly one execution per distinct click,
//! no 5xx, nothing lost from the audit trail; latency p50/p99 printed (`make load` shows them).
//!
//! 50 in flight, not 200: `cargo lambda watch` (the local runtime emulator) stops answering
//! with ~100 invocations queued for one function. API Gateway and Lambda have no such queue.

mod common;

use std::time::Instant;

use common::*;
use futures_util::StreamExt;
use futures_util::future::join_all;

fn s() -> &'static Stack {
    // Long leases: the executions hold while we count them.
    stack_with("10m")
}

async fn timed(body: Vec<u8>) -> (u16, String, f64) {
    let t = Instant::now();
    let (status, reply) = post_signed(&body).await;
    (status, reply, t.elapsed().as_secs_f64() * 1e3)
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_click_200_times_at_once_and_a_burst_of_distinct_clicks() {
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);

    let same = seed_click(s().get("EXAMPLE_SLACK_USER_ID"), "1700000400.000100", ps);
    let same_id = request_id_of(&same);
    let started = Instant::now();
    let results: Vec<_> = futures_util::stream::iter((0..200).map(|_| timed(same.clone())))
        .buffer_unordered(50)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut latencies: Vec<f64> = results.iter().map(|r| r.2).collect();
    for (status, reply, _) in &results {
        assert_eq!(*status, 200, "{reply}");
        assert!(reply.contains("Glass broken"), "{reply}");
    }
    assert_eq!(
        executions_named(&sfn, &same_id).await.len(),
        1,
        "one execution for one click"
    );
    println!(
        "200 deliveries of one click, 50 in flight: {:.1} s wall, p50 {:.0} ms, p99 {:.0} ms",
        wall.as_secs_f64(),
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );

    let users = [
        s().get("EXAMPLE_SLACK_USER_ID"),
        s().get("SECOND_SLACK_USER_ID"),
    ];
    let bodies: Vec<Vec<u8>> = (0..50)
        .map(|i| seed_click(users[i % 2], &format!("1700000401.{i:06}"), ps))
        .collect();
    let ids: Vec<String> = bodies.iter().map(|b| request_id_of(b)).collect();
    let started = Instant::now();
    let results = join_all(bodies.into_iter().map(timed)).await;
    let wall = started.elapsed();
    let mut latencies: Vec<f64> = results.iter().map(|r| r.2).collect();
    for (status, reply, _) in &results {
        assert_eq!(*status, 200, "{reply}");
        assert!(reply.contains("Glass broken"), "{reply}");
    }
    let all = sfn
        .list_executions()
        .state_machine_arn(s().get("STATE_MACHINE_ARN"))
        .send()
        .await
        .unwrap();
    for id in &ids {
        assert_eq!(
            all.executions().iter().filter(|e| e.name() == id).count(),
            1,
            "{id}"
        );
    }
    let store = break_glass::aws::store::Store::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        s().get("TABLE_NAME"),
    );
    for id in &ids {
        let trail = store
            .audit_trail(&break_glass::domain::RequestId::parse(id).unwrap())
            .await
            .unwrap();
        assert_eq!(
            trail
                .first()
                .and_then(|i| i["event"].as_s().ok())
                .map(String::as_str),
            Some("requested"),
            "{id}"
        );
    }
    println!(
        "burst of 50 distinct clicks: {:.1} s wall, p50 {:.0} ms, p99 {:.0} ms, 50 executions",
        wall.as_secs_f64(),
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );
}
