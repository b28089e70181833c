//! The engines and their containers: images built from recipes ([`images`]), containers
//! through the Docker API ([`docker`]), a [`cluster`] of them on one network, each
//! [`service`] ready by its [`probe`], the scheme's own node containers ([`deploy`]),
//! raw engine figures ([`measure`]), the Kafka Connect worker of `outbox-cdc` ([`connect`]), and cleanup by [`labels`], [`watchdog`] and
//! [`reaper`].

pub mod cluster;
pub mod connect;
pub mod deploy;
pub mod docker;
pub mod images;
pub mod labels;
pub mod measure;
pub mod probe;
pub mod reaper;
pub mod service;
pub mod watchdog;
