//! `error-context.new/debug-message/drop`.

use crate::ids::ErrorContextId;
use crate::instance::Handle;
use crate::store::{ErrorContext, Store};
use crate::trap::Trap;

impl Store {
    pub(crate) fn error_context_at(&self, i: u32) -> Result<ErrorContextId, Trap> {
        let (_, _, inst) = self.running()?;
        match self.inst(inst).handles.get(i)? {
            Handle::ErrorContext(e) => Ok(*e),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// `canon error-context.new`: `message` is the embedder's id for the
    /// debug message it lifted (the spec lets a host keep none).
    pub fn error_context_new(&mut self, message: u32) -> Result<u32, Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let e = ErrorContextId::from_key(
                self.error_contexts
                    .insert(ErrorContext { refs: 0, message }),
            );
            self.lower_error_context(inst, e)
        });
        self.guard(r)
    }

    /// `canon error-context.debug-message`: the embedder's message id, for
    /// the embedder to store as a string.
    pub fn error_context_debug_message(&mut self, i: u32) -> Result<u32, Trap> {
        let r = self
            .leaving()
            .and_then(|_| self.error_context_at(i))
            .map(|e| self.error_contexts[e.key()].message);
        self.guard(r)
    }

    /// The embedder's message id of an error-context whose last handle was
    /// dropped, if any: the embedder may free the message. Ids come back
    /// last freed first.
    pub fn take_freed_error_message(&mut self) -> Option<u32> {
        self.freed_error_messages.pop()
    }

    /// `canon error-context.drop`: drops this instance's handle; the value
    /// lives while any instance holds one (then its message id comes back
    /// from [`Store::take_freed_error_message`]).
    pub fn error_context_drop(&mut self, i: u32) -> Result<(), Trap> {
        let r = self.leaving().and_then(|(_, _, inst)| {
            let e = self.error_context_at(i)?;
            self.inst_mut(inst).handles.remove(i)?;
            let ec = &mut self.error_contexts[e.key()];
            ec.refs -= 1;
            if ec.refs == 0 {
                let gone = self.error_contexts.remove(e.key());
                self.freed_error_messages.push(gone.message);
            }
            Ok(())
        });
        self.guard(r)
    }
}
