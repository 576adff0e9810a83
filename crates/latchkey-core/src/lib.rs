//! Latchkey domain: parsed names and identifiers, the records the store keeps, typed audit
//! events with their hash chain, and the clock. No I/O lives here.

pub mod access;
pub mod app_notices;
pub mod audit;
pub mod clock;
pub mod faults;
pub mod jit;
pub mod model;
pub mod names;
pub mod notification;
pub mod principal;
pub mod role;
pub mod rotation;
pub mod timespan;

pub use audit::{Action, AuditEvent, ChainBreak, ChainHead, ChainVerifier, NewAuditEvent, ObjectType, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use faults::crashpoint;
pub use names::{ContainerDn, DeviceId, DisplayName, NameError, Reason, TenantSlug};
pub use notification::{Channel, EmailAddress, EmailError, Notification, PasswordReadNotice};
pub use principal::{Principal, PrincipalForm};
pub use role::{Role, UnknownRole};
pub use rotation::{CharClasses, DeviceJob, JobCause, JobKind, JobState, RotationPolicy};
pub use timespan::{TimeSpan, TimeSpanError};
