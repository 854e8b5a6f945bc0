//! Reading the event ring buffer from tokio.

use super::events::{decode, DecodeError, Event};
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The ring buffer, registered with the tokio reactor (epoll). The programs
/// wake the reader only once a good part of the ring is waiting (a wake-up
/// per event would cost more than the event), so the owner also calls
/// [`EventReader::drain`] on a short timer.
pub struct EventReader {
    fd: AsyncFd<RingBuf<MapData>>,
}

impl EventReader {
    /// Must be called inside a tokio runtime.
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<EventReader> {
        // SAFETY: the RingBuf owns its map fd, which stays open and the same
        // for as long as the AsyncFd owns the RingBuf.
        let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| e.into_parts().1)?;
        Ok(EventReader { fd })
    }

    /// Take at most `max` waiting events now, without waiting.
    pub fn drain(&mut self, out: &mut Vec<Result<Event, DecodeError>>, max: usize) -> usize {
        let ring = self.fd.get_mut();
        let mut n = 0;
        while n < max {
            let Some(item) = ring.next() else { break };
            out.push(decode(&item));
            n += 1;
        }
        n
    }

    /// Wait until events are there, then take at most `max` of them.
    pub async fn read(&mut self, out: &mut Vec<Result<Event, DecodeError>>, max: usize) -> std::io::Result<()> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            let ring = guard.get_inner_mut();
            let mut n = 0;
            while n < max {
                let Some(item) = ring.next() else { break };
                out.push(decode(&item));
                n += 1;
            }
            if n < max {
                // Drained: wait for the next wake-up.
                guard.clear_ready();
            }
            if n > 0 {
                return Ok(());
            }
        }
    }
}
