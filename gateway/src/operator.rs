//! Operator commands (shard moves, drains, node removal, settings) sent to
//! the meta-service, and the map read they are checked against.
//!
//! The meta-service's state machine is the authority: it refuses what
//! cannot be done, with a typed [`protocol::cluster::CommandError`] that
//! `GatewayError` maps to a 4xx. The gateway checks only what the state
//! machine would accept but an operator almost never means (dropping the
//! last replica, aborting a transfer other than the one named), against a
//! fresh map, and sends such decisions guarded by the map's epoch
//! (`IfEpoch`) so that a map that moved on in between is re-read instead
//! of overwritten.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use meta_client::RebalanceAck;
use protocol::cluster::{ClusterCommand, ClusterMap, CommandError};
use protocol::Epoch;

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;

/// Attempts of an epoch-guarded decision whose map moved on meanwhile
/// (progress reports of running transfers bump the epoch every second).
const GUARDED_ATTEMPTS: usize = 5;

/// Wall-clock ms since the Unix epoch, stamped on commands (the state
/// machine never reads a clock).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Gateway {
    /// The map as the meta-service has it now (linearizable read).
    pub async fn fresh_map(&self) -> Result<Arc<ClusterMap>> {
        Ok(self.maps.refresh(Epoch(0)).await?)
    }

    /// Submits `cmd`, then brings this gateway's map up to the epoch it
    /// produced, so the next read through this gateway sees the change.
    pub async fn submit(&self, cmd: ClusterCommand) -> Result<Epoch> {
        tracing::info!(command = cmd.kind(), "operator command");
        let epoch = self.maps.meta().submit(cmd).await?;
        self.maps.refresh(epoch).await?;
        Ok(epoch)
    }

    /// Decides a command on a fresh map and submits it guarded by that
    /// map's epoch; if the map moved on meanwhile, decides again (bounded).
    /// `decide` refuses with a `GatewayError` or returns the command.
    pub async fn submit_guarded(
        &self,
        decide: impl Fn(&ClusterMap) -> Result<ClusterCommand>,
    ) -> Result<Epoch> {
        let mut last = None;
        for _ in 0..GUARDED_ATTEMPTS {
            let map = self.fresh_map().await?;
            let cmd = ClusterCommand::IfEpoch {
                epoch: map.epoch,
                command: Box::new(decide(&map)?),
            };
            match self.maps.meta().submit(cmd).await {
                Ok(epoch) => {
                    self.maps.refresh(epoch).await?;
                    return Ok(epoch);
                }
                Err(e) if matches!(e.refusal(), Some(CommandError::EpochMismatch { .. })) => {
                    last = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(
            || GatewayError::Internal {
                message: "no attempt made".into(),
            },
            GatewayError::from,
        ))
    }

    /// Plans and starts a rebalance now (whether or not automatic
    /// rebalancing is on).
    pub async fn rebalance(&self) -> Result<RebalanceAck> {
        let ack = self.maps.meta().rebalance().await?;
        self.maps.refresh(ack.epoch).await?;
        Ok(ack)
    }
}
