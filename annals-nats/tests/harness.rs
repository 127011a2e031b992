//! The harness starts real `nats-server`s with JetStream, and the client's features work with
//! them: a stream created, a message published and acknowledged, on one node and on a
//! three-node cluster that survives losing a node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use annals_nats::async_nats::jetstream::{self, stream};
use annals_nats::testing::{NatsCluster, NatsServer};

/// Creates `config`, retrying while a new cluster still elects its JetStream leaders.
async fn create_stream(js: &jetstream::Context, config: stream::Config) -> stream::Stream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match js.create_stream(config.clone()).await {
            Ok(stream) => return stream,
            Err(error) if Instant::now() < deadline => {
                eprintln!("stream not created yet: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("cannot create stream {}: {error}", config.name),
        }
    }
}

#[tokio::test]
async fn a_single_server_stores_what_is_published() {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = create_stream(
        &js,
        stream::Config {
            name: "SMOKE".into(),
            subjects: vec!["smoke.>".into()],
            ..Default::default()
        },
    )
    .await;
    let ack = js
        .publish("smoke.one", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1);
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn a_cluster_keeps_a_replicated_stream_through_the_loss_of_a_node() {
    let mut cluster = NatsCluster::start(3).unwrap();
    let client = async_nats::connect(cluster.urls()).await.unwrap();
    let js = jetstream::new(client);
    create_stream(
        &js,
        stream::Config {
            name: "REPLICATED".into(),
            subjects: vec!["replicated.>".into()],
            num_replicas: 3,
            ..Default::default()
        },
    )
    .await;
    js.publish("replicated.a", "1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    cluster.node_mut(2).unwrap().kill().unwrap();
    // Two of three replicas still make a quorum: publishes go on once a leader is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ack = loop {
        let published = async { js.publish("replicated.b", "2".into()).await?.await };
        match published.await {
            Ok(ack) => break ack,
            Err(error) if Instant::now() < deadline => {
                eprintln!("publish after the loss of a node: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("the cluster did not carry on: {error}"),
        }
    };
    assert_eq!(ack.sequence, 2);
    cluster.node_mut(2).unwrap().start_again().unwrap();
}
