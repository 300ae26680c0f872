//! Dropping messages without recursion: a queued message can be a channel
//! end whose channel holds more messages, so a guest can build a chain as
//! long as it likes, and dropping the head must not recurse once per link.

use std::cell::RefCell;

use super::Message;

thread_local! {
    /// Messages waiting to be dropped by the burial running on this thread.
    static GRAVE: RefCell<Option<Vec<Message>>> = const { RefCell::new(None) };
}

/// Drops `messages` without recursion. A message can be a channel end whose
/// channel holds more messages, and a guest controls how long such a chain
/// is: dropping it from inside `Drop` would recurse once per link and
/// overflow the host's stack. The first burial on a thread drops messages
/// one at a time from a work list; burials that those drops start (a
/// channel's last end going) only add to the list.
pub(crate) fn bury(messages: impl Iterator<Item = Message>) {
    let nested = GRAVE.try_with(|g| {
        let mut g = g.borrow_mut();
        match g.as_mut() {
            Some(list) => {
                list.extend(messages);
                None
            }
            None => {
                *g = Some(Vec::new());
                Some(messages)
            }
        }
    });
    // The thread is exiting (no thread-locals left): drop in place.
    let Ok(first) = nested else { return };
    let Some(first) = first else { return };
    for m in first {
        drop(m);
        drain_grave();
    }
    drain_grave();
    let _ = GRAVE.try_with(|g| *g.borrow_mut() = None);
}

fn drain_grave() {
    while let Some(m) = GRAVE.with(|g| g.borrow_mut().as_mut().and_then(Vec::pop)) {
        drop(m);
    }
}
