//! Batched readers of one stream and of the global log, for callers that page through more
//! events than they want in memory at once.

use crate::decode::{CorruptEvents, EventDecodeError, ReadError, UnknownEvents};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::event::Event;
use crate::record::RecordedEvent;
use crate::store::{EventStore, DEFAULT_BATCH_SIZE};
use crate::stream::{Checkpoint, StreamId, Version};

/// Pages through one stream in batches; see [`EventStoreExt::stream_reader`].
#[derive(Debug)]
pub struct StreamReader<'a, S: ?Sized> {
    store: &'a S,
    stream: StreamId,
    next: Version,
    batch_size: usize,
    done: bool,
}

impl<S: EventStore + ?Sized> StreamReader<'_, S> {
    /// Sets how many events one batch holds at most (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The next batch, or `None` once the stream is read to its end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let batch = self
            .store
            .read_stream(&self.stream, self.next, self.batch_size)
            .await?;
        match batch.last() {
            Some(last) => self.next = last.version.next(),
            None => {
                self.done = true;
                return Ok(None);
            }
        }
        // A short batch is not the end of the stream: a store ends a page before an event it
        // cannot read back, and names that event on the next read.
        Ok(Some(batch))
    }

    /// The next batch decoded into `E` (skipped events left out, so a batch may be empty), or
    /// `None` at the end of the stream.
    pub async fn next_decoded<E: Event>(
        &mut self,
        unknown: UnknownEvents,
    ) -> Result<Option<Vec<Envelope<E>>>, ReadError> {
        match self.next_batch().await? {
            Some(batch) => Ok(Some(decode_batch(batch, unknown)?)),
            None => Ok(None),
        }
    }
}

/// Pages through the global log in batches; see [`EventStoreExt::log_reader`].
#[derive(Debug)]
pub struct LogReader<'a, S: ?Sized> {
    store: &'a S,
    after: Checkpoint,
    batch_size: usize,
    corrupt: CorruptEvents,
}

impl<S: EventStore + ?Sized> LogReader<'_, S> {
    /// Sets how many events one batch holds at most (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets what to do with a stored event the store cannot read back (default
    /// [`CorruptEvents::Fail`]).
    pub fn corrupt_events(mut self, policy: CorruptEvents) -> Self {
        self.corrupt = policy;
        self
    }

    /// The checkpoint after the last event returned (or skipped as unreadable).
    pub fn checkpoint(&self) -> Checkpoint {
        self.after
    }

    /// The next page of the log after the checkpoint; unreadable events are skipped (moving
    /// the checkpoint past them) or fail, as the [`CorruptEvents`] policy says.
    async fn read_page(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            match self.store.read_all(self.after, self.batch_size).await {
                Ok(batch) => return Ok(batch),
                Err(error) => self.after = self.corrupt.skip(error)?,
            }
        }
    }

    /// The next batch, or `None` when nothing more is visible now. Calling again later
    /// returns events written since.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let batch = self.read_page().await?;
        match batch.last() {
            Some(last) => {
                self.after = last.checkpoint();
                Ok(Some(batch))
            }
            None => Ok(None),
        }
    }

    /// The next batch decoded into `E` (skipped events left out, so a batch may be empty), or
    /// `None` when nothing more is visible now. The checkpoint moves past skipped events too.
    pub async fn next_decoded<E: Event>(
        &mut self,
        unknown: UnknownEvents,
    ) -> Result<Option<Vec<Envelope<E>>>, ReadError> {
        let batch = self.read_page().await?;
        let Some(last) = batch.last().map(RecordedEvent::checkpoint) else {
            return Ok(None);
        };
        let decoded = decode_batch(batch, unknown)?;
        // Only a fully decoded batch moves the checkpoint: a failed one is read again.
        self.after = last;
        Ok(Some(decoded))
    }
}

/// Batched readers over any [`EventStore`].
pub trait EventStoreExt: EventStore {
    /// Reads `stream` from version `from` on, in batches of [`DEFAULT_BATCH_SIZE`].
    fn stream_reader(&self, stream: &StreamId, from: Version) -> StreamReader<'_, Self> {
        StreamReader {
            store: self,
            stream: stream.clone(),
            next: from,
            batch_size: DEFAULT_BATCH_SIZE,
            done: false,
        }
    }

    /// Reads the global log after `after`, in batches of [`DEFAULT_BATCH_SIZE`].
    fn log_reader(&self, after: Checkpoint) -> LogReader<'_, Self> {
        LogReader {
            store: self,
            after,
            batch_size: DEFAULT_BATCH_SIZE,
            corrupt: CorruptEvents::default(),
        }
    }
}

impl<S: EventStore + ?Sized> EventStoreExt for S {}

/// Decodes a batch, dropping skipped events.
pub(crate) fn decode_batch<E: Event>(
    batch: Vec<RecordedEvent>,
    unknown: UnknownEvents,
) -> Result<Vec<Envelope<E>>, EventDecodeError> {
    let mut decoded = Vec::with_capacity(batch.len());
    for recorded in batch {
        decoded.extend(recorded.into_envelope(unknown)?);
    }
    Ok(decoded)
}
