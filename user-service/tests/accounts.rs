//! Sign-up and sign-in against the real service, on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use parley_proto::user::v1 as pb;

parley_testkit::on_every_backend!(registers_and_signs_in, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;

    let registered = register(&mut client, "Alice", "correct horse battery", Some("Alice@Example.com")).await;
    let user = registered.user.clone().unwrap();
    assert_eq!(user.username, "Alice");
    assert_eq!(user.email, "Alice@Example.com");
    assert_eq!(user.display_name, "Alice");
    // The first account administers the instance (see tests/admin.rs).
    assert_eq!(user.role, pb::Role::Admin as i32);
    assert!(!user.email_verified);
    assert!(user.last_login_at.is_some());
    assert_eq!(registered.access_expires_in, 900);
    assert!(!registered.access_token.is_empty() && !registered.refresh_token.is_empty());

    let me = client
        .get_me(authed(pb::GetMeRequest {}, &registered.access_token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.id, user.id);

    // By username in any case; by email only once the address is verified (anyone can claim
    // an address), and then in any case.
    for login_name in ["alice", "ALICE"] {
        let signed_in = login(&mut client, login_name, "correct horse battery").await.unwrap();
        assert_eq!(signed_in.user.unwrap().id, user.id);
    }
    let status = login(&mut client, "alice@example.com", "correct horse battery")
        .await
        .unwrap_err();
    assert_eq!(status.message(), "invalid login or password");
    verify_email(&server, &mut client, "Alice", "alice").await;
    for login_name in ["alice@example.com", "ALICE@EXAMPLE.COM"] {
        let signed_in = login(&mut client, login_name, "correct horse battery").await.unwrap();
        assert_eq!(signed_in.user.unwrap().id, user.id);
    }
    // Stored as an argon2id PHC string at the OWASP parameters, never in clear.
    let db = server.database().await;
    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains("correct horse battery"));

    let status = login(&mut client, "alice", "wrong password!").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // Without a token, only public methods answer.
    let status = client.get_me(pb::GetMeRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    server.stop().await;
});

parley_testkit::on_every_backend!(whole_account_lifecycle, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    run_lifecycle(&server, "lifecycle_user").await;
    // Deleting the account removed its tokens and codes too.
    let db = server.database().await;
    assert_eq!(count_rows(&db, "users").await, 0);
    assert_eq!(count_rows(&db, "refresh_tokens").await, 0);
    assert_eq!(count_rows(&db, "verification_codes").await, 0);
    server.stop().await;
});

parley_testkit::on_every_backend!(
    bad_registrations_name_the_field_and_change_nothing,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let request = |username: &str, password: &str, email: Option<&str>| pb::RegisterRequest {
            username: username.into(),
            password: password.into(),
            email: email.map(Into::into),
            display_name: None,
            ..Default::default()
        };
        let cases = [
            (request("ab", "long enough pw", None), "username"),
            (request(&"x".repeat(33), "long enough pw", None), "username"),
            (request("has space", "long enough pw", None), "username"),
            (request("semi;colon", "long enough pw", None), "username"),
            (request("", "long enough pw", None), "username"),
            (request("good_name", "short", None), "password"),
            (request("good_name", &"p".repeat(129), None), "password"),
            (request("good_name", "long enough pw", Some("not-an-email")), "email"),
            (request("good_name", "long enough pw", Some("a@b")), "email"),
        ];
        for (bad, field) in cases {
            assert_invalid(client.register(bad).await, field);
        }
        let db = server.database().await;
        assert_eq!(count_rows(&db, "users").await, 0);

        // Boundaries that are fine: 3 and 32 characters, 8 and 128 character passwords, Unicode.
        register(&mut client, "abc", "12345678", None).await;
        register(&mut client, &"y".repeat(32), &"p".repeat(128), None).await;
        let chinese = register(&mut client, "张伟_2024", "密码密码密码密码", None).await;
        assert_eq!(chinese.user.unwrap().username, "张伟_2024");
        login(&mut client, "张伟_2024", "密码密码密码密码").await.unwrap();
        // Hindi and Thai names need combining marks (viramas, vowel signs, tone marks).
        for name in ["लक्ष्मी", "कृष्ण", "น้ำใจ"] {
            let registered = register(&mut client, name, "long enough pw", None).await;
            assert_eq!(registered.user.unwrap().username, name);
            login(&mut client, name, "long enough pw").await.unwrap();
        }

        // Logins that are not even well-formed.
        assert_invalid(login(&mut client, "", "whatever1").await, "login");
        assert_invalid(login(&mut client, "abc", "").await, "password");
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(
    usernames_are_unique_ignoring_case_and_addresses_tell_nothing,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        register(&mut client, "Bob", "bob password", Some("bob@example.com")).await;
        for username in ["bob", "BOB", "ｂｏｂ"] {
            let status = client
                .register(pb::RegisterRequest {
                    username: username.into(),
                    password: "other password".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::AlreadyExists, "{username}: {status:?}");
            let fields: Vec<String> = parley_service_kit::grpc_status::field_violations(&status)
                .into_iter()
                .map(|(f, _)| f)
                .collect();
            assert_eq!(fields, vec!["username".to_string()]);
        }
        let db = server.database().await;
        assert_eq!(count_rows(&db, "users").await, 1);

        // An address in use, verified or not, is accepted and stays unverified: the answer is
        // the same as for a fresh one.
        let robert = register(&mut client, "robert", "robert password", Some("BOB@example.COM")).await;
        assert!(!robert.user.unwrap().email_verified);
        verify_email(&server, &mut client, "Bob", "bob").await;
        let rita = register(&mut client, "rita", "rita password", Some("bob@EXAMPLE.com")).await;
        assert!(!rita.user.unwrap().email_verified);
        // The address names Bob, its verified owner, and no one else.
        login(&mut client, "bob@example.com", "bob password").await.unwrap();
        assert_eq!(
            login(&mut client, "bob@example.com", "rita password")
                .await
                .unwrap_err()
                .message(),
            "invalid login or password"
        );
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(profile_updates_follow_the_mask, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let carol = register(&mut client, "carol", "carol password", Some("carol@example.com")).await;
    register(&mut client, "dave", "dave password", Some("dave@example.com")).await;
    let token = carol.access_token.clone();
    let update_client = client.clone();
    let update = |request: pb::UpdateProfileRequest| {
        let mut client = update_client.clone();
        let token = token.clone();
        async move {
            client
                .update_profile(authed(request, &token))
                .await
                .map(|r| r.into_inner().user.unwrap())
        }
    };

    // Without a mask: the fields that are set.
    let user = update(pb::UpdateProfileRequest {
        display_name: Some("Carol C.".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(user.display_name, "Carol C.");
    assert_eq!(user.email, "carol@example.com");

    // With a mask: named fields, unset ones cleared; others untouched even when set.
    let user = update(pb::UpdateProfileRequest {
        display_name: Some("ignored".into()),
        email: None,
        avatar_url: Some("https://example.com/c.png".into()),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["email".into(), "avatar_url".into()],
        }),
        current_password: Some("carol password".into()),
    })
    .await
    .unwrap();
    assert_eq!(user.display_name, "Carol C.");
    assert_eq!(user.email, "");
    assert_eq!(user.avatar_url, "https://example.com/c.png");

    // Bad values and unknown mask paths change nothing.
    assert_invalid(
        update(pb::UpdateProfileRequest {
            email: Some("nope".into()),
            display_name: Some("Changed".into()),
            ..Default::default()
        })
        .await,
        "email",
    );
    assert_invalid(
        update(pb::UpdateProfileRequest {
            avatar_url: Some("javascript:alert(1)".into()),
            ..Default::default()
        })
        .await,
        "avatar_url",
    );
    assert_invalid(
        update(pb::UpdateProfileRequest {
            display_name: Some("x".repeat(65)),
            ..Default::default()
        })
        .await,
        "display_name",
    );
    assert_invalid(
        update(pb::UpdateProfileRequest {
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["role".into()],
            }),
            ..Default::default()
        })
        .await,
        "update_mask",
    );
    let me = client
        .get_me(authed(pb::GetMeRequest {}, &carol.access_token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.display_name, "Carol C.");
    assert_eq!(me.email, "");

    // A new email can be set and starts unverified, even one another account uses: the
    // answer does not tell.
    let user = update(pb::UpdateProfileRequest {
        email: Some("carol@new.example.org".into()),
        current_password: Some("carol password".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(user.email, "carol@new.example.org");
    assert!(!user.email_verified);
    let user = update(pb::UpdateProfileRequest {
        email: Some("DAVE@example.com".into()),
        current_password: Some("carol password".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(user.email, "DAVE@example.com");
    assert!(!user.email_verified);
    server.stop().await;
});

parley_testkit::on_every_backend!(
    wrong_passwords_change_nothing_for_signed_in_users,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let erin = register(&mut client, "erin", "erin password", None).await;
        let status = client
            .change_password(authed(
                pb::ChangePasswordRequest {
                    old_password: "not erin's".into(),
                    new_password: "new erin password".into(),
                    ..Default::default()
                },
                &erin.access_token,
            ))
            .await;
        assert_invalid(status, "old_password");
        assert_invalid(
            client
                .change_password(authed(
                    pb::ChangePasswordRequest {
                        old_password: "erin password".into(),
                        new_password: "short".into(),
                        ..Default::default()
                    },
                    &erin.access_token,
                ))
                .await,
            "new_password",
        );
        assert_invalid(
            client
                .delete_account(authed(
                    pb::DeleteAccountRequest {
                        password: "not erin's".into(),
                    },
                    &erin.access_token,
                ))
                .await,
            "password",
        );
        // Still the old password, still signed in.
        login(&mut client, "erin", "erin password").await.unwrap();
        refresh(&mut client, &erin.refresh_token).await.unwrap();
        server.stop().await;
    }
);

/// The user's row as stored, to show a request changed nothing (or only what it named).
async fn user_row(db: &sqlx::AnyPool, username: &str) -> (String, String, Option<String>, i64, String, i64) {
    sqlx::query_as(
        "SELECT display_name, avatar_url, email, email_verified, password_hash, updated_at FROM users \
         WHERE username = $1",
    )
    .bind(username)
    .fetch_one(db)
    .await
    .unwrap()
}

parley_testkit::on_every_backend!(profile_updates_write_only_what_changes, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let db = server.database().await;
    let nora = register(&mut client, "nora", "nora password", Some("nora@example.com")).await;
    verify_email(&server, &mut client, "nora", "nora").await;
    let update_client = client.clone();
    let token = nora.access_token.clone();
    let update = move |request: pb::UpdateProfileRequest| {
        let mut client = update_client.clone();
        let token = token.clone();
        async move {
            client
                .update_profile(authed(request, &token))
                .await
                .map(|r| r.into_inner().user.unwrap())
        }
    };

    // Two updates of different fields at once both stay, and neither touches the address.
    for round in 0..6 {
        let name = format!("Nora {round}");
        let avatar = format!("https://example.com/{round}.png");
        let (a, b) = tokio::join!(
            update(pb::UpdateProfileRequest {
                display_name: Some(name.clone()),
                ..Default::default()
            }),
            update(pb::UpdateProfileRequest {
                avatar_url: Some(avatar.clone()),
                ..Default::default()
            })
        );
        a.unwrap();
        b.unwrap();
        let (display_name, avatar_url, _, verified, _, _) = user_row(&db, "nora").await;
        assert_eq!((display_name, avatar_url), (name, avatar), "round {round}");
        assert_eq!(verified, 1, "round {round}");
    }

    // The same values again change nothing, not even updated_at: a retried update is harmless.
    let before = user_row(&db, "nora").await;
    let same = update(pb::UpdateProfileRequest {
        display_name: Some(before.0.clone()),
        email: Some("nora@example.com".into()),
        avatar_url: Some(before.1.clone()),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into(), "email".into(), "avatar_url".into()],
        }),
        current_password: Some("nora password".into()),
    })
    .await
    .unwrap();
    assert!(same.email_verified);
    assert_eq!(user_row(&db, "nora").await, before);

    // A request that names nothing is refused, naming the mask.
    assert_invalid(update(pb::UpdateProfileRequest::default()).await, "update_mask");
    assert_invalid(
        update(pb::UpdateProfileRequest {
            update_mask: Some(prost_types::FieldMask { paths: vec![] }),
            ..Default::default()
        })
        .await,
        "update_mask",
    );
    // Bad values change nothing, even next to good ones.
    for (request, field) in [
        (
            pb::UpdateProfileRequest {
                display_name: Some("Fine".into()),
                email: Some("not an address".into()),
                ..Default::default()
            },
            "email",
        ),
        (
            pb::UpdateProfileRequest {
                display_name: Some("bell\u{7}".into()),
                avatar_url: Some("https://example.com/fine.png".into()),
                ..Default::default()
            },
            "display_name",
        ),
        (
            pb::UpdateProfileRequest {
                avatar_url: Some("ftp://example.com/a.png".into()),
                ..Default::default()
            },
            "avatar_url",
        ),
    ] {
        assert_invalid(update(request).await, field);
    }
    assert_eq!(user_row(&db, "nora").await, before);

    // A display name set empty (named in the mask but unset) falls back to the username.
    let user = update(pb::UpdateProfileRequest {
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(user.display_name, "nora");
    server.stop().await;
});

// A deleted account's access token (still within its 15 minutes) changes nothing and answers
// NOT_FOUND, whichever fields it names.
parley_testkit::on_every_backend!(
    profile_updates_of_a_deleted_account_are_not_found,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let db = server.database().await;
        let pia = register(&mut client, "pia", "pia password", None).await;
        client
            .delete_account(authed(
                pb::DeleteAccountRequest {
                    password: "pia password".into(),
                },
                &pia.access_token,
            ))
            .await
            .unwrap();
        for request in [
            pb::UpdateProfileRequest {
                display_name: Some("Pia P.".into()),
                ..Default::default()
            },
            pb::UpdateProfileRequest {
                display_name: Some(String::new()),
                ..Default::default()
            },
            pb::UpdateProfileRequest {
                email: Some("pia@example.com".into()),
                current_password: Some("pia password".into()),
                ..Default::default()
            },
        ] {
            let status = client
                .update_profile(authed(request.clone(), &pia.access_token))
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::NotFound, "{request:?}: {status:?}");
        }
        assert_eq!(count_rows(&db, "users").await, 0);
        server.stop().await;
    }
);

parley_testkit::on_every_backend!(bad_password_changes_change_nothing, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let db = server.database().await;
    let omar = register(&mut client, "omar", "omar password", None).await;
    let before = user_row(&db, "omar").await;
    for (old, new, field) in [
        ("omar password", "short", "new_password"),
        ("omar password", &"x".repeat(129), "new_password"),
        ("", "a fine new password", "old_password"),
        ("not omar's", "a fine new password", "old_password"),
    ] {
        let status = client
            .change_password(authed(
                pb::ChangePasswordRequest {
                    old_password: old.into(),
                    new_password: new.into(),
                    ..Default::default()
                },
                &omar.access_token,
            ))
            .await;
        assert_invalid(status, field);
    }
    assert_eq!(user_row(&db, "omar").await, before);
    refresh(&mut client, &omar.refresh_token).await.unwrap();
    server.stop().await;
});

// A stored value this version does not know is an error, not a guess: an unknown role must
// not quietly become USER.
parley_testkit::on_every_backend!(an_unknown_stored_role_is_an_error, |db_url: String| async move {
    let (server, _dir) = start(&db_url).await;
    let mut client = server.client().await;
    let pia = register(&mut client, "pia", "pia password", None).await;
    let db = server.database().await;
    sqlx::query("UPDATE users SET role = 'superuser'")
        .execute(&db)
        .await
        .unwrap();
    let status = client
        .get_me(authed(pb::GetMeRequest {}, &pia.access_token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!(
        login(&mut client, "pia", "pia password").await.unwrap_err().code(),
        tonic::Code::Internal
    );
    server.stop().await;
});

// A stolen access token must not become a permanent takeover: moving the address (where
// reset codes go) needs the current password; a missing or wrong one changes nothing, and
// wrong ones count like failed sign-ins. Other fields need none.
parley_testkit::on_every_backend!(
    changing_the_email_needs_the_current_password,
    |db_url: String| async move {
        let (server, _dir) = start(&db_url).await;
        let mut client = server.client().await;
        let db = server.database().await;
        let gail = register(&mut client, "gail", "gail password", Some("gail@example.com")).await;
        verify_email(&server, &mut client, "gail", "gail").await;
        let before = user_row(&db, "gail").await;
        let update = |request: pb::UpdateProfileRequest| {
            let mut client = client.clone();
            let token = gail.access_token.clone();
            async move {
                client
                    .update_profile(authed(request, &token))
                    .await
                    .map(|r| r.into_inner().user.unwrap())
            }
        };
        let to_thief = || pb::UpdateProfileRequest {
            email: Some("thief@example.com".into()),
            ..Default::default()
        };
        let status = update(to_thief()).await;
        assert_invalid(status, "current_password");
        // Removing the address, or naming it in the mask, is moving it too.
        assert_invalid(
            update(pb::UpdateProfileRequest {
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
                ..Default::default()
            })
            .await,
            "current_password",
        );
        assert_invalid(
            update(pb::UpdateProfileRequest {
                current_password: Some("not gail's".into()),
                ..to_thief()
            })
            .await,
            "current_password",
        );
        assert_eq!(user_row(&db, "gail").await, before);
        // Wrong ones are counted: after the free ones, even the right password waits.
        for _ in 0..4 {
            update(pb::UpdateProfileRequest {
                current_password: Some("not gail's".into()),
                ..to_thief()
            })
            .await
            .unwrap_err();
        }
        let status = update(pb::UpdateProfileRequest {
            current_password: Some("gail password".into()),
            ..to_thief()
        })
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert_eq!(user_row(&db, "gail").await, before);
        sqlx::query("DELETE FROM login_failures").execute(&db).await.unwrap();

        // Other fields need no password.
        let user = update(pb::UpdateProfileRequest {
            display_name: Some("Gail G.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(user.display_name, "Gail G.");
        // With it, the address moves and starts unverified.
        let user = update(pb::UpdateProfileRequest {
            current_password: Some("gail password".into()),
            ..to_thief()
        })
        .await
        .unwrap();
        assert_eq!(user.email, "thief@example.com");
        assert!(!user.email_verified);
        server.stop().await;
    }
);

// The data directory, the key's directory, the database and the key are the owner's only,
// however the umask would have made them.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let db_url = user_service::Config::default_database_url(&data_dir);
    let server = common::TestServer::start(&db_url, data_dir.clone()).await;
    let mut client = server.client().await;
    register(&mut client, "ines", "ines password", None).await;
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&data_dir.join("user-service")), 0o700);
    assert_eq!(mode(&data_dir.join("user-service.db")), 0o600);
    assert_eq!(mode(&data_dir.join("user-service.db-wal")), 0o600);
    assert_eq!(mode(&data_dir.join("user-service/signing-key")), 0o600);
    server.stop().await;
}
