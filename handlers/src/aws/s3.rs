//! Amazon S3 adapter of the [`ArchiveStore`] port: the flow-log archive bucket.
//!
//! **Bucket posture** (the `AWSSupport-CollectAmazonConnectContactFlowLog` runbook's checks, judged by
//! `connect_events_core::flow_logs::check_posture` before the first write):
//!
//! * `GetPublicAccessBlock`: all four flags on → `Some(true)`; any flag off → `Some(false)`;
//!   `NoSuchPublicAccessBlockConfiguration` → `None`. Only the bucket-level setting is read: a bucket
//!   that relies on the account-level block alone is refused (fail safe).
//! * `GetBucketPolicyStatus`: `IsPublic`; `NoSuchBucketPolicy` → `None`.
//! * `GetBucketAcl`: grants to the `AllUsers` / `AuthenticatedUsers` groups, listed as
//!   `AllUsers:READ`, ….
//!
//! **Owner check.** With [`S3ArchiveOptions::expected_bucket_owner`] set, every call carries
//! `ExpectedBucketOwner`, so S3 itself refuses (403 `AccessDenied` → [`PortError::Rejected`]) a bucket
//! owned by another account — the runbook's `S3BucketOwnerAccountId` check, enforced on each request
//! rather than once.
//!
//! **Conditional writes.** [`PutCondition::Absent`] is sent as `If-None-Match: *`,
//! [`PutCondition::Matches`] as `If-Match: <etag>`; `412 PreconditionFailed` and
//! `409 ConditionalRequestConflict` are [`PortError::Conflict`], and so is `NoSuchKey` on an
//! `If-Match` write (the version that was read has been deleted), so the policy re-reads and merges
//! again. moto 5.2.5 (the local test server) enforces both headers on PutObject as S3 does.
//!
//! **Objects.** Gzip NDJSON stored with `Content-Type: application/gzip` and *no*
//! `Content-Encoding` (with `Content-Encoding: gzip` HTTP clients and the console would decompress
//! the download), the policy's user metadata, and server-side encryption: SSE-KMS with
//! [`S3ArchiveOptions::kms_key_id`] when set (the caller then needs `kms:GenerateDataKey`, and
//! `kms:Decrypt` to read), else SSE-S3 (`AES256`).
//!
//! **Permissions.** Besides `s3:GetObject`/`s3:PutObject` and the three bucket reads, the role needs
//! `s3:ListBucket` on the bucket: without it S3 answers a GetObject of a missing key with 403
//! instead of 404 `NoSuchKey`, and the first archive of every contact fails as rejected.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{PublicAccessBlockConfiguration, ServerSideEncryption};
use connect_events_core::flow_logs::{
    ArchiveLocation, ArchiveObject, ArchiveStore, BucketPosture, PutCondition, StoredObject,
};
use connect_events_core::PortError;

use super::port_error;

/// Service name in [`PortError`]s.
const SERVICE: &str = "s3";

/// `Content-Type` of archive objects (gzip-compressed NDJSON).
pub const ARCHIVE_CONTENT_TYPE: &str = "application/gzip";

/// ACL grantee groups that make a bucket public, with the short names reported.
const PUBLIC_GROUPS: [(&str, &str); 2] = [
    (
        "http://acs.amazonaws.com/groups/global/AllUsers",
        "AllUsers",
    ),
    (
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
        "AuthenticatedUsers",
    ),
];

/// Region used in console URLs when neither the options nor the SDK configuration name one.
const FALLBACK_REGION: &str = "us-east-1";

/// Settings of [`S3Archive`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3ArchiveOptions {
    /// Account that must own the bucket, sent as `ExpectedBucketOwner` on every call.
    pub expected_bucket_owner: Option<String>,
    /// KMS key (id, alias or ARN) for SSE-KMS; `None` = SSE-S3 (`AES256`).
    pub kms_key_id: Option<String>,
    /// Region shown in console URLs; `None` = the SDK configuration's Region.
    pub region: Option<String>,
    /// Path-style addressing, for local servers reached by host name (`http://localhost:…`).
    pub force_path_style: bool,
}

/// The archive bucket on Amazon S3 (see the module docs).
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: aws_sdk_s3::Client,
    options: S3ArchiveOptions,
    region: String,
}

impl S3Archive {
    pub fn new(config: &SdkConfig, options: S3ArchiveOptions) -> Self {
        let mut conf = aws_sdk_s3::config::Builder::from(config);
        if options.force_path_style {
            conf = conf.force_path_style(true);
        }
        let region = options
            .region
            .clone()
            .or_else(|| config.region().map(ToString::to_string))
            .unwrap_or_else(|| FALLBACK_REGION.to_string());
        S3Archive {
            client: aws_sdk_s3::Client::from_conf(conf.build()),
            options,
            region,
        }
    }

    pub fn options(&self) -> &S3ArchiveOptions {
        &self.options
    }

    fn owner(&self) -> Option<String> {
        self.options.expected_bucket_owner.clone()
    }

    async fn public_access_block(&self, bucket: &str) -> Result<Option<bool>, PortError> {
        match self
            .client
            .get_public_access_block()
            .bucket(bucket)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
        {
            Ok(out) => Ok(out.public_access_block_configuration().map(all_blocked)),
            Err(e) if error_code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
            Err(e) => Err(port_error(SERVICE, "GetPublicAccessBlock", e)),
        }
    }

    async fn policy_is_public(&self, bucket: &str) -> Result<Option<bool>, PortError> {
        match self
            .client
            .get_bucket_policy_status()
            .bucket(bucket)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
        {
            Ok(out) => Ok(out.policy_status().and_then(|s| s.is_public())),
            Err(e) if error_code(&e) == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) => Err(port_error(SERVICE, "GetBucketPolicyStatus", e)),
        }
    }

    async fn public_acl_grants(&self, bucket: &str) -> Result<Vec<String>, PortError> {
        let acl = self
            .client
            .get_bucket_acl()
            .bucket(bucket)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "GetBucketAcl", e))?;
        Ok(acl
            .grants()
            .iter()
            .filter_map(|grant| {
                let uri = grant.grantee()?.uri()?;
                let (_, group) = PUBLIC_GROUPS.iter().find(|(u, _)| *u == uri)?;
                let permission = grant.permission().map_or("?", |p| p.as_str());
                Some(format!("{group}:{permission}"))
            })
            .collect())
    }
}

#[async_trait]
impl ArchiveStore for S3Archive {
    async fn bucket_posture(&self, bucket: &str) -> Result<BucketPosture, PortError> {
        let (public_access_block, policy_is_public, public_acl_grants) = tokio::try_join!(
            self.public_access_block(bucket),
            self.policy_is_public(bucket),
            self.public_acl_grants(bucket),
        )?;
        Ok(BucketPosture {
            public_access_block,
            policy_is_public,
            public_acl_grants,
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, PortError> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(port_error(SERVICE, "GetObject", e)),
        };
        let etag = out.e_tag().map(str::to_owned);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Unavailable {
                service: SERVICE,
                message: format!("GetObject {bucket}/{key}: reading the body: {e}"),
            })?
            .into_bytes()
            .to_vec();
        Ok(Some(StoredObject { body, etag }))
    }

    async fn put(&self, object: &ArchiveObject, condition: PutCondition) -> Result<(), PortError> {
        let metadata: HashMap<String, String> = object
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut request = self
            .client
            .put_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .body(ByteStream::from(object.body.clone()))
            .content_type(ARCHIVE_CONTENT_TYPE)
            .set_metadata(Some(metadata))
            .set_expected_bucket_owner(self.owner());
        request = match &self.options.kms_key_id {
            Some(key_id) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id),
            None => request.server_side_encryption(ServerSideEncryption::Aes256),
        };
        request = match &condition {
            PutCondition::Absent => request.if_none_match("*"),
            PutCondition::Matches(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let deleted = matches!(condition, PutCondition::Matches(_))
                    && error_code(&e) == Some("NoSuchKey");
                match port_error(SERVICE, "PutObject", e) {
                    PortError::NotFound { message, .. } if deleted => Err(PortError::Conflict {
                        service: SERVICE,
                        message: format!("{message} (the version read has been deleted)"),
                    }),
                    other => Err(other),
                }
            }
        }
    }

    fn locate(&self, bucket: &str, key: &str) -> ArchiveLocation {
        ArchiveLocation {
            uri: format!("s3://{bucket}/{key}"),
            console_url: Some(console_url(&self.region, bucket, key)),
            download_command: Some(download_command(bucket, key)),
        }
    }
}

/// All four Block Public Access flags are on.
fn all_blocked(c: &PublicAccessBlockConfiguration) -> bool {
    [
        c.block_public_acls(),
        c.ignore_public_acls(),
        c.block_public_policy(),
        c.restrict_public_buckets(),
    ]
    .iter()
    .all(|flag| *flag == Some(true))
}

/// The service error code of a failed call, if S3 answered.
fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// The S3 console page of an object:
/// `https://console.aws.amazon.com/s3/object/<bucket>?region=<region>&prefix=<url-encoded key>`
/// (console host of the Region's partition).
pub fn console_url(region: &str, bucket: &str, key: &str) -> String {
    let host = if region.starts_with("cn-") {
        "console.amazonaws.cn"
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com"
    } else {
        "console.aws.amazon.com"
    };
    format!(
        "https://{host}/s3/object/{bucket}?region={}&prefix={}",
        url_encode(region),
        url_encode(key)
    )
}

/// The AWS CLI command that downloads an object into the current directory:
/// `aws s3 cp s3://<bucket>/<key> ./<file name>`, arguments shell-quoted when needed.
pub fn download_command(bucket: &str, key: &str) -> String {
    let file = key
        .rsplit('/')
        .next()
        .filter(|f| !f.is_empty())
        .unwrap_or(key);
    format!(
        "aws s3 cp {} {}",
        shell_quote(&format!("s3://{bucket}/{key}")),
        shell_quote(&format!("./{file}"))
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Quotes a shell word with single quotes unless it only holds characters that need none.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b'@' | b'+' | b',' | b'%'
                )
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Downloads every object under `s3://bucket/prefix` (in key order) into `dir`, streaming each
/// body to a file, for a replay (the Firehose capture: gzip NDJSON objects). Returns each object's
/// `s3://` URI with its local file; the file keeps the key's extension so the reader knows the
/// format (`.gz`: gzip NDJSON).
pub async fn fetch_prefix(
    config: &SdkConfig,
    uri: &str,
    dir: &std::path::Path,
) -> Result<Vec<(String, std::path::PathBuf)>, PortError> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| PortError::Rejected {
            service: SERVICE,
            message: format!("{uri}: not an s3:// URI"),
        })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(PortError::Rejected {
            service: SERVICE,
            message: format!("{uri}: no bucket"),
        });
    }
    let client = aws_sdk_s3::Client::new(config);
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| port_error(SERVICE, "ListObjectsV2", e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    keys.sort();
    std::fs::create_dir_all(dir).map_err(|e| PortError::io(SERVICE, dir.display(), e))?;
    let mut out = Vec::with_capacity(keys.len());
    for (n, key) in keys.into_iter().filter(|k| !k.ends_with('/')).enumerate() {
        let object = client
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "GetObject", e))?;
        let extension = std::path::Path::new(&key)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            // Firehose names objects without an extension; its capture is gzip NDJSON.
            .unwrap_or_else(|| ".gz".into());
        let path = dir.join(format!("{n:08}{extension}"));
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| PortError::io(SERVICE, path.display(), e))?;
        let mut body = object.body.into_async_read();
        tokio::io::copy(&mut body, &mut file)
            .await
            .map_err(|e| PortError::io(SERVICE, format!("s3://{bucket}/{key}"), e))?;
        out.push((format!("s3://{bucket}/{key}"), path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_only_unreserved() {
        assert_eq!(url_encode("a/b c_~.-"), "a%2Fb%20c_~.-");
        assert_eq!(url_encode("é"), "%C3%A9");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("s3://b/k.gz"), "s3://b/k.gz");
        assert_eq!(shell_quote("./a b"), "'./a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn console_host_follows_the_partition() {
        assert!(console_url("cn-north-1", "b", "k").starts_with("https://console.amazonaws.cn/"));
        assert!(console_url("us-gov-west-1", "b", "k")
            .starts_with("https://console.amazonaws-us-gov.com/"));
    }
}
