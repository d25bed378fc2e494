//! Fair shares of the hashing pool: one client holds at most
//! [`max_hash_jobs_per_client`](crate::AuthConfig::max_hash_jobs_per_client) places in it
//! at once, so a flood of logins, registrations or resets from one address is refused
//! (429) for its own excess instead of filling the queue and pushing everyone else's
//! logins into 503.

use std::net::IpAddr;

use super::{Auth, AuthError};
use crate::password::{PoolError, Reservation};
use crate::per_ip::PerIpSlot;

/// A place in the hashing pool, and the client's share it counts against. Take
/// `reservation` out to hash; the share is given back when the ticket's remains are
/// dropped, at the end of the request's hashing.
pub(super) struct HashTicket {
    pub(super) reservation: Reservation,
    _share: Option<PerIpSlot>,
    _registration: Option<RegistrationShare>,
}

/// Registrations hashing from one client at once. A person registers once; a script that
/// registers from many addresses must not fill the pool that logins need.
const REGISTRATIONS_PER_CLIENT: usize = 4;

/// A registration's place among those hashing now: at most [`REGISTRATIONS_PER_CLIENT`]
/// per client and half the pool's queue for all registrations together, so logins always
/// find room.
pub(super) struct RegistrationShare {
    _client: Option<PerIpSlot>,
    _all: tokio::sync::OwnedSemaphorePermit,
}

/// The registrations that may hash at once, all clients together.
pub(super) fn registration_places(hash_queue: usize) -> std::sync::Arc<tokio::sync::Semaphore> {
    std::sync::Arc::new(tokio::sync::Semaphore::new((hash_queue / 2).max(1)))
}

impl Auth {
    /// A place in the hashing pool for a request from `client`: refused with
    /// [`AuthError::ClientBusy`] when the client already holds its share, and with
    /// [`AuthError::Overloaded`] when the pool is full. Without a client address there is
    /// no share to count against (only the pool's bound).
    pub(super) fn reserve_hash_for(&self, client: Option<IpAddr>) -> Result<HashTicket, AuthError> {
        let share = match client {
            Some(ip) => Some(
                self.inner
                    .hash_shares
                    .take(ip, self.inner.config.max_hash_jobs_per_client)
                    .ok_or(AuthError::ClientBusy)?,
            ),
            None => None,
        };
        // The share is given back (dropped) if the pool refuses.
        let reservation = self
            .inner
            .hasher
            .reserve()
            .map_err(|shed| AuthError::from(PoolError::Overloaded(shed)))?;
        Ok(HashTicket {
            reservation,
            _share: share,
            _registration: None,
        })
    }

    /// A place in the hashing pool for a registration from `client`: as
    /// [`reserve_hash_for`](Self::reserve_hash_for), within the registrations' smaller
    /// shares (see [`RegistrationShare`]); refused with [`AuthError::ClientBusy`] beyond
    /// them.
    pub(super) fn reserve_registration_hash(
        &self,
        client: Option<IpAddr>,
    ) -> Result<HashTicket, AuthError> {
        let per_client = match client {
            Some(ip) => Some(
                self.inner
                    .registration_shares
                    .take(ip, REGISTRATIONS_PER_CLIENT)
                    .ok_or(AuthError::ClientBusy)?,
            ),
            None => None,
        };
        let all = std::sync::Arc::clone(&self.inner.registration_places)
            .try_acquire_owned()
            .map_err(|_| AuthError::ClientBusy)?;
        let mut ticket = self.reserve_hash_for(client)?;
        ticket._registration = Some(RegistrationShare {
            _client: per_client,
            _all: all,
        });
        Ok(ticket)
    }

    /// Hashes `password` in the place `ticket` holds.
    pub(super) async fn hash_with(
        &self,
        ticket: HashTicket,
        password: &str,
    ) -> Result<String, AuthError> {
        let HashTicket {
            reservation,
            _share,
            _registration,
        } = ticket;
        Ok(self
            .inner
            .hasher
            .hash_reserved(reservation, password.to_owned())
            .await?)
    }
}
