//! `error-context.new/debug-message/drop`.

use crate::ids::{ErrorContextId, InstanceId};
use crate::instance::Handle;
use crate::running::Running;
use crate::store::{ErrorContext, Store};
use crate::trap::Trap;

impl Store {
    /// The error-context at handle `i` of `inst`.
    pub(crate) fn error_context_at(
        &self,
        inst: InstanceId,
        i: u32,
    ) -> Result<ErrorContextId, Trap> {
        match self.inst(inst).handles.get(i)? {
            Handle::ErrorContext(e) => Ok(*e),
            _ => Err(Trap::WrongHandleKind(i)),
        }
    }

    /// The embedder's message id of an error-context whose last handle was
    /// dropped, if any: the embedder may free the message. Ids come back
    /// last freed first.
    pub fn take_freed_error_message(&mut self) -> Option<u32> {
        self.freed_error_messages.pop()
    }
}

impl Running<'_> {
    /// `canon error-context.new`: `message` is the embedder's id for the
    /// debug message it lifted (the spec lets a host keep none).
    pub fn error_context_new(self, message: u32) -> Result<u32, Trap> {
        self.leave(|s, (_, _, inst)| {
            let e = ErrorContextId::from_key(
                s.error_contexts.insert(ErrorContext { refs: 0, message }),
            );
            s.lower_error_context(inst, e)
        })
    }

    /// `canon error-context.debug-message`: the embedder's message id, for
    /// the embedder to store as a string.
    pub fn error_context_debug_message(self, i: u32) -> Result<u32, Trap> {
        self.leave(|s, (_, _, inst)| {
            let e = s.error_context_at(inst, i)?;
            Ok(s.error_contexts[e.key()].message)
        })
    }

    /// `canon error-context.drop`: drops this instance's handle; the value
    /// lives while any instance holds one (then its message id comes back
    /// from [`Store::take_freed_error_message`]).
    pub fn error_context_drop(self, i: u32) -> Result<(), Trap> {
        self.leave(|s, (_, _, inst)| {
            let e = s.error_context_at(inst, i)?;
            s.inst_mut(inst).handles.remove(i)?;
            let ec = &mut s.error_contexts[e.key()];
            ec.refs -= 1;
            if ec.refs == 0 {
                let gone = s.error_contexts.remove(e.key());
                s.freed_error_messages.push(gone.message);
            }
            Ok(())
        })
    }
}
