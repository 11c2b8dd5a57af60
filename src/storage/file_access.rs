//! Who may do what to a managed file (`athena.files`,
//! `athena.file_permissions`): one function, [`decide`], and the access
//! matrix as test data below.
//!
//! - The file's owner (its uploader, or a live `owner` grant) may do
//!   everything. Ownership follows the user id, which the auth service
//!   issues once per person: the owner acting in another organization is
//!   still the owner; the active organization decides `organization`
//!   visibility and organization grants only.
//! - A live grant (not revoked, not expired) to the user, or to the user's
//!   organization, allows its permission, and reading.
//! - `public` files are readable by anyone; `organization` files by members
//!   of the file's organization.
//! - `team` and `role` grants name principals the gateway's end users do not
//!   carry yet: they never match.
//!
//! - A trusted service (the SDK's `/storage/service/files*` routes, the
//!   admin key or `storage.service`; `Source::Service`, never built from a
//!   user's request) may do everything within the organization it names,
//!   or within its client when it names none.
//!
//! A file the user may not even read is reported as absent (404, no
//! existence leak); one they may read but not change is a 403.

use crate::auth::end_user::{EndUser, Source};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    Delete,
    Share,
    Owner,
}

impl Permission {
    pub fn parse(text: &str) -> Option<Permission> {
        Some(match text {
            "read" => Permission::Read,
            "write" => Permission::Write,
            "delete" => Permission::Delete,
            "share" => Permission::Share,
            "owner" => Permission::Owner,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Delete => "delete",
            Permission::Share => "share",
            Permission::Owner => "owner",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Private,
    Organization,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Organization => "organization",
            Visibility::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Visibility> {
        Some(match text {
            "private" => Visibility::Private,
            "organization" => Visibility::Organization,
            "public" => Visibility::Public,
            _ => return None,
        })
    }
}

/// What the decision needs of a file row.
#[derive(Debug, Clone)]
pub struct FileFacts<'a> {
    pub organization_id: &'a str,
    pub uploaded_by: Option<&'a str>,
    pub visibility: Visibility,
}

/// A grant row.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// `user`, `organization`, `team`, `role`.
    pub principal_type: &'a str,
    pub principal_id: &'a str,
    pub permission: Permission,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Grant<'_> {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    fn names(&self, user: &EndUser) -> bool {
        match self.principal_type {
            "user" => self.principal_id == user.user_id,
            "organization" => user.organization_id.as_deref() == Some(self.principal_id),
            _ => false,
        }
    }
}

/// Whether `user` may do `wanted` to the file, given its live and dead
/// grants, at `now`.
pub fn decide(
    file: &FileFacts<'_>,
    grants: &[Grant<'_>],
    user: &EndUser,
    wanted: Permission,
    now: DateTime<Utc>,
) -> bool {
    if user.source == Source::Service {
        return user
            .organization_id
            .as_deref()
            .is_none_or(|o| o == file.organization_id);
    }
    if file.uploaded_by == Some(user.user_id.as_str()) {
        return true;
    }
    let mine = || grants.iter().filter(|g| g.live(now) && g.names(user));
    if mine().any(|g| g.permission == Permission::Owner || g.permission == wanted) {
        return true;
    }
    if wanted != Permission::Read {
        return false;
    }
    mine().next().is_some()
        || match file.visibility {
            Visibility::Public => true,
            Visibility::Organization => {
                user.organization_id.as_deref() == Some(file.organization_id)
            }
            Visibility::Private => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use Permission::*;

    /// The access matrix: (who, file visibility, grant, [read, write,
    /// delete, share]).
    const MATRIX: &[(&str, &str, &str, [bool; 4])] = &[
        ("owner", "private", "none", [true, true, true, true]),
        ("service", "private", "none", [true, true, true, true]),
        (
            "service-elsewhere",
            "public",
            "live-owner",
            [false, false, false, false],
        ),
        (
            "service-any-org",
            "private",
            "none",
            [true, true, true, true],
        ),
        (
            "owner-elsewhere",
            "private",
            "none",
            [true, true, true, true],
        ),
        ("same-org", "private", "none", [false, false, false, false]),
        (
            "same-org",
            "organization",
            "none",
            [true, false, false, false],
        ),
        (
            "other-org",
            "organization",
            "none",
            [false, false, false, false],
        ),
        ("other-org", "public", "none", [true, false, false, false]),
        (
            "other-org",
            "private",
            "live-write",
            [true, true, false, false],
        ),
        (
            "other-org",
            "private",
            "live-share",
            [true, false, false, true],
        ),
        (
            "other-org",
            "private",
            "live-owner",
            [true, true, true, true],
        ),
        (
            "other-org",
            "private",
            "revoked-owner",
            [false, false, false, false],
        ),
        (
            "other-org",
            "private",
            "expired-owner",
            [false, false, false, false],
        ),
        (
            "same-org",
            "private",
            "org-delete",
            [true, false, true, false],
        ),
        (
            "other-org",
            "private",
            "org-delete",
            [false, false, false, false],
        ),
        (
            "other-org",
            "private",
            "team-owner",
            [false, false, false, false],
        ),
        (
            "other-org",
            "public",
            "revoked-write",
            [true, false, false, false],
        ),
    ];

    fn user(who: &str) -> EndUser {
        let service = |org: Option<&str>| EndUser {
            user_id: String::new(),
            organization_id: org.map(str::to_string),
            source: Source::Service,
        };
        match who {
            "service" => return service(Some("acme")),
            "service-elsewhere" => return service(Some("globex")),
            "service-any-org" => return service(None),
            _ => {}
        }
        let (id, org) = match who {
            "owner" => ("alice", "acme"),
            "owner-elsewhere" => ("alice", "globex"),
            "same-org" => ("bob", "acme"),
            _ => ("eve", "globex"),
        };
        EndUser {
            user_id: id.into(),
            organization_id: Some(org.into()),
            source: Source::Jwt,
        }
    }

    #[test]
    fn the_access_matrix() {
        let now = Utc::now();
        for (who, visibility, grant, expected) in MATRIX {
            let file = FileFacts {
                organization_id: "acme",
                uploaded_by: Some("alice"),
                visibility: Visibility::parse(visibility).unwrap(),
            };
            let g = |principal_type, principal_id, permission| Grant {
                principal_type,
                principal_id,
                permission,
                expires_at: None,
                revoked_at: None,
            };
            let grants: Vec<Grant> = match *grant {
                "none" => vec![],
                "live-write" => vec![g("user", "eve", Write)],
                "live-share" => vec![g("user", "eve", Share)],
                "live-owner" => vec![g("user", "eve", Owner)],
                "revoked-owner" => vec![Grant {
                    revoked_at: Some(now - Duration::minutes(1)),
                    ..g("user", "eve", Owner)
                }],
                "expired-owner" => vec![Grant {
                    expires_at: Some(now - Duration::seconds(1)),
                    ..g("user", "eve", Owner)
                }],
                "revoked-write" => vec![Grant {
                    revoked_at: Some(now),
                    ..g("user", "eve", Write)
                }],
                "org-delete" => vec![g("organization", "acme", Delete)],
                "team-owner" => vec![g("team", "eve", Owner)],
                other => panic!("{other}"),
            };
            for (i, wanted) in [Read, Write, Delete, Share].into_iter().enumerate() {
                assert_eq!(
                    decide(&file, &grants, &user(who), wanted, now),
                    expected[i],
                    "{who} / {visibility} / {grant} / {wanted:?}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for p in [Read, Write, Delete, Share, Owner] {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("admin"), None);
        assert_eq!(Visibility::parse("secret"), None);
    }
}
