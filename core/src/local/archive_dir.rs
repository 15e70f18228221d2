//! Archives as files: `s3/<bucket>/<key>`, metadata beside in `s3-metadata/<bucket>/<key>.json`.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{fnv1a, read_optional, write_atomic, StateDir};
use crate::error::PortError;
use crate::flow_logs::{
    ArchiveLocation, ArchiveObject, ArchiveStore, BucketPosture, PutCondition, StoredObject,
};

const SERVICE: &str = "local archive";

pub struct LocalArchive {
    root: PathBuf,
    metadata_root: PathBuf,
    lock: Mutex<()>,
}

impl LocalArchive {
    pub fn new(state: &StateDir) -> Self {
        LocalArchive {
            root: state.s3(),
            metadata_root: state.s3_metadata(),
            lock: Mutex::new(()),
        }
    }

    fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, PortError> {
        let bad = |what: &str| PortError::Rejected {
            service: SERVICE,
            message: format!("{what} is not a safe path: {bucket}/{key}"),
        };
        if bucket.is_empty() || bucket.contains('/') || bucket.starts_with('.') {
            return Err(bad("bucket"));
        }
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(bad("key"));
        }
        Ok(self.root.join(bucket).join(key))
    }

    fn etag(body: &[u8]) -> String {
        format!("{:016x}", fnv1a(body))
    }
}

#[async_trait]
impl ArchiveStore for LocalArchive {
    async fn bucket_posture(&self, _bucket: &str) -> Result<BucketPosture, PortError> {
        // A local directory is never public.
        Ok(BucketPosture {
            public_access_block: Some(true),
            policy_is_public: None,
            public_acl_grants: Vec::new(),
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, PortError> {
        let path = self.path(bucket, key)?;
        Ok(read_optional(&path)?.map(|body| StoredObject {
            etag: Some(Self::etag(&body)),
            body,
        }))
    }

    async fn put(&self, object: &ArchiveObject, condition: PutCondition) -> Result<(), PortError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.path(&object.bucket, &object.key)?;
        let current = read_optional(&path)?.map(|b| Self::etag(&b));
        let ok = match (&condition, &current) {
            (PutCondition::Absent, None) => true,
            (PutCondition::Matches(want), Some(have)) => want == have,
            _ => false,
        };
        if !ok {
            return Err(PortError::Conflict {
                service: SERVICE,
                message: format!("precondition failed for {}", path.display()),
            });
        }
        write_atomic(&path, &object.body)?;
        let meta =
            serde_json::to_vec_pretty(&object.metadata).map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: e.to_string(),
            })?;
        write_atomic(
            &self
                .metadata_root
                .join(&object.bucket)
                .join(format!("{}.json", object.key)),
            &meta,
        )
    }

    fn locate(&self, bucket: &str, key: &str) -> ArchiveLocation {
        let path = self.root.join(bucket).join(key);
        ArchiveLocation {
            uri: path.display().to_string(),
            console_url: None,
            download_command: None,
        }
    }
}
