//! Typed ids of the store's objects.
//!
//! Ids are what the embedder holds (a thread id keys the continuation the
//! embedder parks); they are not guest-visible indices, which live in each
//! instance's [`Table`](crate::table::Table)s.

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u32);

        impl $name {
            /// The raw number, for embedder side tables.
            pub fn as_u32(self) -> u32 {
                self.0
            }

            #[inline]
            #[allow(dead_code)]
            pub(crate) fn key(self) -> usize {
                self.0 as usize
            }

            #[inline]
            #[allow(dead_code)]
            pub(crate) fn from_key(k: usize) -> Self {
                $name(k as u32)
            }
        }
    )*};
}

ids! {
    /// A component instance of the store.
    InstanceId;
    /// A task: one call of a lifted function.
    TaskId;
    /// A thread: a task's implicit thread or an explicit one (`thread.new-indirect`).
    ThreadId;
    /// A waitable: a subtask or a stream or future end.
    WaitableId;
    /// A waitable set.
    SetId;
    /// The state a stream's or future's two ends share.
    SharedId;
    /// An error-context value.
    ErrorContextId;
    /// A resource type defined by a component instance.
    ResourceTypeId;
}

/// A subtask: the caller's side of a call through `canon lower`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubtaskId(pub(crate) WaitableId);

impl SubtaskId {
    /// The raw number, for embedder side tables.
    pub fn as_u32(self) -> u32 {
        self.0 .0
    }
}
