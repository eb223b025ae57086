//! [`ImageScramCredentials`]: the SCRAM credential store of a SASL listener, read from the
//! metadata image this node follows. Each exchange looks its user up in the newest image, so a
//! credential added, changed or removed through AlterUserScramCredentials takes effect on every
//! node as soon as its image has the record — no restart.

use std::sync::Arc;

use rafka_security::sasl::scram::{ScramCredential, ScramCredentialStore, ScramMechanism};
use tokio::sync::watch;

use crate::image::MetadataImage;

/// SCRAM credentials from the newest published image.
pub struct ImageScramCredentials {
    images: watch::Receiver<Arc<MetadataImage>>,
}

impl ImageScramCredentials {
    pub fn new(images: watch::Receiver<Arc<MetadataImage>>) -> ImageScramCredentials {
        ImageScramCredentials { images }
    }
}

impl ScramCredentialStore for ImageScramCredentials {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.images
            .borrow()
            .scram_credential(user, mechanism)
            .cloned()
    }
}
