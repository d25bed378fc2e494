//! The SQL shared by the sqlx backends. SQLite and PostgreSQL both accept `$N` parameters,
//! `RETURNING` and `ON CONFLICT`, so one text serves both; only the schema files differ.

/// Columns of `auth_users` (aliased `u`) as `user_from_row` reads them, from column 0.
macro_rules! user_columns {
    () => {
        "u.id, u.email, u.created_at_ms, u.email_confirmed_at_ms"
    };
}

/// How many columns `user_columns!` names: the index of whatever a query selects after them.
pub(crate) const USER_COLUMNS: usize = 4;

/// Rows one statement of a sweep deletes at most.
pub(crate) const SWEEP_BATCH: i64 = 1000;

/// Columns of `auth_sessions` (aliased `s`) as `session_from_row(row, first)` reads them.
macro_rules! session_columns {
    () => {
        "s.token_hash, s.user_id, s.created_at_ms, s.last_seen_ms, s.expires_at_ms, \
         s.authenticated_at_ms, s.remembered, s.user_agent, s.client_ip, s.methods"
    };
}

/// The session-and-user join, up to the token-hash comparison (`... WHERE s.token_hash`):
/// user columns first, then the session's from column [`USER_COLUMNS`], as
/// `session_from_row(row, USER_COLUMNS)` reads them. Shared by the single lookup here and SQLite's batched one (`IN (...)`).
macro_rules! session_join {
    () => {
        concat!(
            "SELECT ",
            user_columns!(),
            ", ",
            session_columns!(),
            " FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id WHERE s.token_hash"
        )
    };
}

/// The conditions under which a token (aliased `t`, its user `u`) is valid: `$1` its
/// hash, `$2` its purpose, `$3` now.
macro_rules! valid_token {
    () => {
        "t.token_hash = $1 AND t.purpose = $2 AND t.expires_at_ms > $3 \
         AND t.account_email = u.email"
    };
}

/// Columns of `auth_tokens` (aliased `t`) as `token_from_row(row, first)` reads them.
macro_rules! token_columns {
    () => {
        "t.token_hash, t.user_id, t.purpose, t.sent_to, t.account_email, t.created_at_ms, \
         t.expires_at_ms"
    };
}

/// The same columns, unqualified, for a `RETURNING` clause (SQLite's refuses an alias).
macro_rules! token_returning {
    () => {
        "token_hash, user_id, purpose, sent_to, account_email, created_at_ms, expires_at_ms"
    };
}

/// Columns of `auth_factors` (aliased `f`) as `factor_from_row(row, first)` reads them.
macro_rules! factor_columns {
    () => {
        "f.id, f.user_id, f.kind, f.credential_id, f.name, f.secret, f.counter, f.confirmed, \
         f.created_at_ms, f.last_used_ms"
    };
}

/// Columns of `auth_identities` (aliased `i`) as `identity_from_row(row, first)` reads them.
macro_rules! identity_columns {
    () => {
        "i.id, i.user_id, i.provider, i.subject, i.email, i.created_at_ms"
    };
}

/// Columns of `auth_outbox` as `queued_mail_from_row` reads them.
macro_rules! outbox_columns {
    () => {
        "id, attempts, sender, recipient, message, created_at_ms, expires_at_ms, request"
    };
}

/// Implements [`Store`](crate::Store) for a type with a `pool: sqlx::Pool<$db>` field and
/// a `changes: ChangeHub` field, on which every committed change to a user or session is
/// published (see [`Change`](crate::store::Change)). The calling module defines
/// `QUIET_SWEEP: Option<&str>`, a statement run before the sweep of expired sessions in its
/// transaction, so a backend whose triggers announce changes can leave those out.
/// `$more` are further methods of the implementation (what only one backend does).
/// `$claim_lock` ends the subquery that picks outbox rows to claim: PostgreSQL's
/// `FOR UPDATE SKIP LOCKED`, so concurrent workers take different rows without waiting;
/// nothing on SQLite, which runs one writer at a time.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $row:ty, $claim_lock:literal, { $($more:tt)* }) => {
        fn user_from_row(row: &$row) -> Result<$crate::user::User, $crate::store::StoreError> {
            use sqlx::Row as _;
            Ok($crate::user::User::new(
                $crate::user::UserId(row.try_get(0).map_err($crate::store::map_sqlx)?),
                row.try_get::<String, _>(1).map_err($crate::store::map_sqlx)?,
                row.try_get(2).map_err($crate::store::map_sqlx)?,
            )
            .email_confirmed_at(row.try_get(3).map_err($crate::store::map_sqlx)?))
        }

        /// An outbox row, or `None` for a request of a kind this version does not know (a
        /// newer instance's, during a rolling upgrade): it is left to an instance that does,
        /// and nothing else in the outbox waits for it.
        fn queued_mail_from_row(
            row: &$row,
        ) -> Result<Option<$crate::store::QueuedMail>, $crate::store::StoreError> {
            use sqlx::Row as _;
            let to: String = row.try_get(3).map_err($crate::store::map_sqlx)?;
            let created_at_ms = row.try_get(5).map_err($crate::store::map_sqlx)?;
            let expires_at_ms = row.try_get(6).map_err($crate::store::map_sqlx)?;
            let request: Option<String> = row.try_get(7).map_err($crate::store::map_sqlx)?;
            let entry = match request {
                Some(name) => {
                    let Some(purpose) = $crate::store::TokenPurpose::parse(&name) else {
                        tracing::warn!(target: "tower_auth", request = %name, "a mail request of an unknown kind is left in the outbox");
                        return Ok(None);
                    };
                    $crate::store::OutboxEntry::Request($crate::store::MailRequest {
                        purpose,
                        email: to,
                        created_at_ms,
                        expires_at_ms,
                    })
                }
                None => $crate::store::OutboxEntry::Mail($crate::store::OutgoingMail {
                    from: row.try_get(2).map_err($crate::store::map_sqlx)?,
                    to,
                    message: row.try_get(4).map_err($crate::store::map_sqlx)?,
                    created_at_ms,
                    expires_at_ms,
                }),
            };
            Ok(Some($crate::store::QueuedMail {
                id: row.try_get(0).map_err($crate::store::map_sqlx)?,
                attempts: $crate::store::count_from_db(
                    row.try_get(1).map_err($crate::store::map_sqlx)?,
                )?,
                entry,
            }))
        }

        /// Queues `mail` on `conn` (inside the caller's transaction), due now.
        async fn insert_token_on(
            conn: &mut <$db as sqlx::Database>::Connection,
            token: &$crate::store::EmailToken,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query(
                "INSERT INTO auth_tokens (token_hash, user_id, purpose, sent_to, \
                   account_email, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&token.hash.as_bytes()[..])
            .bind(token.user_id.0)
            .bind(token.purpose.as_str())
            .bind(&token.sent_to)
            .bind(&token.account_email)
            .bind(token.created_at_ms)
            .bind(token.expires_at_ms)
            .execute(&mut *conn)
            .await
            .map_err($crate::store::map_sqlx)?;
            Ok(())
        }

        async fn queue_mail_on(
            conn: &mut <$db as sqlx::Database>::Connection,
            mail: &[$crate::store::OutgoingMail],
        ) -> Result<(), $crate::store::StoreError> {
            for message in mail {
                sqlx::query(
                    "INSERT INTO auth_outbox (sender, recipient, message, created_at_ms, \
                       next_attempt_ms, attempts, expires_at_ms) \
                     VALUES ($1, $2, $3, $4, $4, 0, $5)",
                )
                .bind(&message.from)
                .bind(&message.to)
                .bind(&message.message)
                .bind(message.created_at_ms)
                .bind(message.expires_at_ms)
                .execute(&mut *conn)
                .await
                .map_err($crate::store::map_sqlx)?;
            }
            Ok(())
        }

        fn token_hash_from_row(
            row: &$row,
            index: usize,
        ) -> Result<$crate::token::TokenHash, $crate::store::StoreError> {
            use sqlx::Row as _;
            let hash: Vec<u8> = row.try_get(index).map_err($crate::store::map_sqlx)?;
            $crate::token::TokenHash::from_slice(&hash)
                .ok_or_else(|| $crate::store::StoreError::Backend("corrupt token hash".into()))
        }

        fn session_from_row(
            row: &$row,
            first: usize,
        ) -> Result<$crate::store::Session, $crate::store::StoreError> {
            use sqlx::Row as _;
            Ok($crate::store::Session {
                token_hash: token_hash_from_row(row, first)?,
                user_id: $crate::user::UserId(
                    row.try_get(first + 1).map_err($crate::store::map_sqlx)?,
                ),
                created_at_ms: row.try_get(first + 2).map_err($crate::store::map_sqlx)?,
                last_seen_ms: row.try_get(first + 3).map_err($crate::store::map_sqlx)?,
                expires_at_ms: row.try_get(first + 4).map_err($crate::store::map_sqlx)?,
                authenticated_at_ms: row.try_get(first + 5).map_err($crate::store::map_sqlx)?,
                remembered: row.try_get(first + 6).map_err($crate::store::map_sqlx)?,
                user_agent: row.try_get(first + 7).map_err($crate::store::map_sqlx)?,
                client_ip: row.try_get(first + 8).map_err($crate::store::map_sqlx)?,
                methods: $crate::AuthMethods::from_bits(
                    row.try_get(first + 9).map_err($crate::store::map_sqlx)?,
                ),
            })
        }

        fn factor_from_row(
            row: &$row,
            first: usize,
        ) -> Result<$crate::store::Factor, $crate::store::StoreError> {
            use sqlx::Row as _;
            let kind: String = row.try_get(first + 2).map_err($crate::store::map_sqlx)?;
            Ok($crate::store::Factor {
                id: row.try_get(first).map_err($crate::store::map_sqlx)?,
                user_id: $crate::user::UserId(
                    row.try_get(first + 1).map_err($crate::store::map_sqlx)?,
                ),
                kind: $crate::store::FactorKind::parse(&kind).ok_or_else(|| {
                    $crate::store::StoreError::Backend("unknown factor kind".into())
                })?,
                credential_id: row.try_get(first + 3).map_err($crate::store::map_sqlx)?,
                name: row.try_get(first + 4).map_err($crate::store::map_sqlx)?,
                secret: row.try_get(first + 5).map_err($crate::store::map_sqlx)?,
                counter: row.try_get(first + 6).map_err($crate::store::map_sqlx)?,
                confirmed: row.try_get(first + 7).map_err($crate::store::map_sqlx)?,
                created_at_ms: row.try_get(first + 8).map_err($crate::store::map_sqlx)?,
                last_used_ms: row.try_get(first + 9).map_err($crate::store::map_sqlx)?,
            })
        }

        fn identity_from_row(
            row: &$row,
            first: usize,
        ) -> Result<$crate::store::Identity, $crate::store::StoreError> {
            use sqlx::Row as _;
            Ok($crate::store::Identity {
                id: row.try_get(first).map_err($crate::store::map_sqlx)?,
                user_id: $crate::user::UserId(
                    row.try_get(first + 1).map_err($crate::store::map_sqlx)?,
                ),
                provider: row.try_get(first + 2).map_err($crate::store::map_sqlx)?,
                subject: row.try_get(first + 3).map_err($crate::store::map_sqlx)?,
                email: row.try_get(first + 4).map_err($crate::store::map_sqlx)?,
                created_at_ms: row.try_get(first + 5).map_err($crate::store::map_sqlx)?,
            })
        }

        fn token_from_row(
            row: &$row,
            first: usize,
        ) -> Result<$crate::store::EmailToken, $crate::store::StoreError> {
            use sqlx::Row as _;
            let purpose: String = row.try_get(first + 2).map_err($crate::store::map_sqlx)?;
            Ok($crate::store::EmailToken {
                hash: token_hash_from_row(row, first)?,
                user_id: $crate::user::UserId(
                    row.try_get(first + 1).map_err($crate::store::map_sqlx)?,
                ),
                purpose: $crate::store::TokenPurpose::parse(&purpose).ok_or_else(|| {
                    $crate::store::StoreError::Backend("unknown token purpose".into())
                })?,
                sent_to: row.try_get(first + 3).map_err($crate::store::map_sqlx)?,
                account_email: row.try_get(first + 4).map_err($crate::store::map_sqlx)?,
                created_at_ms: row.try_get(first + 5).map_err($crate::store::map_sqlx)?,
                expires_at_ms: row.try_get(first + 6).map_err($crate::store::map_sqlx)?,
            })
        }

        fn counter_from_row(row: &$row) -> Result<$crate::store::Counter, $crate::store::StoreError> {
            use sqlx::Row as _;
            Ok($crate::store::Counter::new(
                $crate::store::count_from_db(row.try_get(0).map_err($crate::store::map_sqlx)?)?,
                row.try_get(1).map_err($crate::store::map_sqlx)?,
            ))
        }

        /// The one row a write's `RETURNING` produced. The statement was run to its end
        /// (`fetch_all`, never `fetch_one`): SQLite commits an autocommit statement when it
        /// finishes, and a commit that fails (a full disk) is reported only then; a
        /// statement reset after its first row would report the row and lose the error,
        /// acknowledging a write that was rolled back.
        fn returning_one(
            rows: Result<Vec<$row>, sqlx::Error>,
        ) -> Result<$row, $crate::store::StoreError> {
            rows.map_err($crate::store::map_sqlx)?
                .into_iter()
                .next()
                .ok_or_else(|| $crate::store::StoreError::Backend("a write returned no row".into()))
        }

        /// Applies `update` to user `id` on `conn`; false when there is no such user.
        async fn update_user_on(
            conn: &mut <$db as sqlx::Database>::Connection,
            id: $crate::user::UserId,
            update: &$crate::store::UserUpdate,
        ) -> Result<bool, $crate::store::StoreError> {
            // Each column is either kept (flag false) or set from its parameter, so one
            // prepared statement serves every combination of fields.
            let result = sqlx::query(
                "UPDATE auth_users SET \
                   password_hash = CASE WHEN $2 THEN $3 ELSE password_hash END, \
                   email = CASE WHEN $4 THEN $5 ELSE email END, \
                   email_confirmed_at_ms = CASE WHEN $6 THEN $7 ELSE email_confirmed_at_ms END \
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(update.password_hash.is_some())
            .bind(update.password_hash.as_deref().unwrap_or(""))
            .bind(update.email.is_some())
            .bind(update.email.as_deref().unwrap_or(""))
            .bind(update.email_confirmed_at_ms.is_some())
            .bind(update.email_confirmed_at_ms.unwrap_or(0))
            .execute(&mut *conn)
            .await
            .map_err($crate::store::map_sqlx)?;
            if result.rows_affected() == 0 {
                return Ok(false);
            }
            if let Some(which) = update.end_sessions {
                delete_sessions_on(conn, id, which).await?;
            }
            if update.end_tokens {
                sqlx::query("DELETE FROM auth_tokens WHERE user_id = $1")
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::store::map_sqlx)?;
            }
            Ok(true)
        }

        /// Deletes the sessions of user `id` that `which` names, on `conn`.
        async fn delete_sessions_on(
            conn: &mut <$db as sqlx::Database>::Connection,
            id: $crate::user::UserId,
            which: $crate::store::EndSessions,
        ) -> Result<u64, $crate::store::StoreError> {
            // An empty blob equals no 32-byte hash: "all but nothing" is all.
            let keep: Vec<u8> = match which {
                $crate::store::EndSessions::All => Vec::new(),
                $crate::store::EndSessions::AllExcept(token) => token.as_bytes().to_vec(),
            };
            let result =
                sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND token_hash <> $2")
                    .bind(id.0)
                    .bind(keep)
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::store::map_sqlx)?;
            Ok(result.rows_affected())
        }

        /// Runs `statement` (a `DELETE` of at most `$2` rows matching `$1 = bound`) until it
        /// deletes fewer than a batch, each batch in its own transaction (opened with
        /// `prelude` when there is one); returns how many rows went.
        async fn sweep_batches(
            pool: &sqlx::Pool<$db>,
            statement: &str,
            bound: i64,
            prelude: Option<&str>,
        ) -> Result<u64, $crate::store::StoreError> {
            let mut deleted = 0;
            loop {
                let mut tx = pool.begin().await.map_err($crate::store::map_sqlx)?;
                if let Some(prelude) = prelude {
                    sqlx::query(prelude)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                }
                let batch = sqlx::query(statement)
                    .bind(bound)
                    .bind($crate::store::sql::SWEEP_BATCH)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?
                    .rows_affected();
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                deleted += batch;
                if batch < $crate::store::sql::SWEEP_BATCH as u64 {
                    return Ok(deleted);
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn add_user(
                &self,
                user: $crate::store::NewUser,
            ) -> Result<$crate::user::User, $crate::store::StoreError> {
                use sqlx::Row as _;
                let insert = sqlx::query(
                    "INSERT INTO auth_users \
                       (email, password_hash, created_at_ms, email_confirmed_at_ms) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.created_at_ms)
                .bind(user.email_confirmed_at_ms);
                let Some(link) = &user.first_link else {
                    let row = returning_one(insert.fetch_all(&self.pool).await)?;
                    return Ok($crate::user::User::new(
                        $crate::user::UserId(row.try_get(0).map_err($crate::store::map_sqlx)?),
                        user.email,
                        user.created_at_ms,
                    )
                    .email_confirmed_at(user.email_confirmed_at_ms));
                };
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                let row = returning_one(insert.fetch_all(&mut *tx).await)?;
                let id = $crate::user::UserId(row.try_get(0).map_err($crate::store::map_sqlx)?);
                let token = $crate::store::EmailToken {
                    hash: link.hash,
                    user_id: id,
                    purpose: link.purpose,
                    sent_to: user.email.clone(),
                    account_email: user.email.clone(),
                    created_at_ms: user.created_at_ms,
                    expires_at_ms: link.expires_at_ms,
                };
                insert_token_on(&mut tx, &token).await?;
                queue_mail_on(&mut tx, &link.mail).await?;
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                Ok($crate::user::User::new(id, user.email, user.created_at_ms)
                    .email_confirmed_at(user.email_confirmed_at_ms))
            }

            async fn find_user_by(
                &self,
                lookup: $crate::store::UserLookup<'_>,
            ) -> Result<Option<$crate::store::UserRecord>, $crate::store::StoreError> {
                use sqlx::Row as _;
                use $crate::store::UserLookup;
                let row = match lookup {
                    UserLookup::Id(id) => sqlx::query(concat!(
                        "SELECT ", user_columns!(), ", u.password_hash FROM auth_users u WHERE u.id = $1"
                    ))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await,
                    UserLookup::Email(email) => sqlx::query(concat!(
                        "SELECT ", user_columns!(), ", u.password_hash FROM auth_users u WHERE u.email = $1"
                    ))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await,
                }
                .map_err($crate::store::map_sqlx)?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some($crate::store::UserRecord::new(
                    user_from_row(&row)?,
                    row.try_get::<String, _>($crate::store::sql::USER_COLUMNS)
                        .map_err($crate::store::map_sqlx)?,
                )))
            }

            async fn update_user(
                &self,
                id: $crate::user::UserId,
                update: $crate::store::UserUpdate,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                if !update_user_on(&mut tx, id, &update).await? {
                    return Err($crate::store::StoreError::NotFound);
                }
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                self.changes.publish($crate::store::Change::User(id));
                Ok(())
            }

            async fn replace_password_hash(
                &self,
                id: $crate::user::UserId,
                current: &str,
                new: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE auth_users SET password_hash = $3 \
                     WHERE id = $1 AND password_hash = $2",
                )
                .bind(id.0)
                .bind(current)
                .bind(new)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected() > 0)
            }

            async fn delete_user(
                &self,
                id: $crate::user::UserId,
            ) -> Result<bool, $crate::store::StoreError> {
                // Sessions and tokens go with it (ON DELETE CASCADE).
                let result = sqlx::query("DELETE FROM auth_users WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                self.changes.publish($crate::store::Change::User(id));
                Ok(result.rows_affected() > 0)
            }

            async fn create_session(
                &self,
                session: $crate::store::Session,
                replace_others: bool,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                if replace_others {
                    // Lock the user's row first, so concurrent single-session logins for one
                    // user (from several instances) run one after another: each one's delete
                    // then sees the session the previous one inserted, and one remains.
                    // A no-op UPDATE, because SQLite has no `SELECT ... FOR UPDATE`.
                    let locked = sqlx::query(
                        "UPDATE auth_users SET password_hash = password_hash WHERE id = $1",
                    )
                    .bind(session.user_id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                    if locked.rows_affected() == 0 {
                        return Err($crate::store::StoreError::NotFound);
                    }
                    // Keep a row holding this very token hash, so the insert below collides
                    // with it (Duplicate, transaction rolled back) instead of the delete
                    // making room for a silent overwrite.
                    sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND token_hash <> $2")
                        .bind(session.user_id.0)
                        .bind(&session.token_hash.as_bytes()[..])
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                }
                sqlx::query(
                    "INSERT INTO auth_sessions \
                       (token_hash, user_id, created_at_ms, last_seen_ms, expires_at_ms, \
                        authenticated_at_ms, remembered, user_agent, client_ip, methods) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&session.token_hash.as_bytes()[..])
                .bind(session.user_id.0)
                .bind(session.created_at_ms)
                .bind(session.last_seen_ms)
                .bind(session.expires_at_ms)
                .bind(session.authenticated_at_ms)
                .bind(session.remembered)
                .bind(&session.user_agent)
                .bind(&session.client_ip)
                .bind(session.methods.bits())
                .execute(&mut *tx)
                .await
                .map_err($crate::store::map_sqlx)?;
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                if replace_others {
                    self.changes.publish($crate::store::Change::User(session.user_id));
                }
                Ok(())
            }

            async fn find_session(
                &self,
                token: &$crate::token::TokenHash,
            ) -> Result<
                Option<($crate::store::Session, $crate::user::User)>,
                $crate::store::StoreError,
            > {
                self.lookup_session(token).await
            }

            async fn touch_session(
                &self,
                token: &$crate::token::TokenHash,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE auth_sessions SET last_seen_ms = $2 WHERE token_hash = $1")
                    .bind(&token.as_bytes()[..])
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn delete_session(
                &self,
                token: &$crate::token::TokenHash,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
                    .bind(&token.as_bytes()[..])
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                self.changes.publish($crate::store::Change::Session(*token));
                Ok(result.rows_affected() > 0)
            }

            async fn delete_user_sessions(
                &self,
                user_id: $crate::user::UserId,
                except: Option<&$crate::token::TokenHash>,
            ) -> Result<u64, $crate::store::StoreError> {
                let which = except.map_or($crate::store::EndSessions::All, |token| {
                    $crate::store::EndSessions::AllExcept(*token)
                });
                let mut conn = self.pool.acquire().await.map_err($crate::store::map_sqlx)?;
                let ended = delete_sessions_on(&mut conn, user_id, which).await?;
                self.changes.publish($crate::store::Change::User(user_id));
                Ok(ended)
            }

            async fn list_user_sessions(
                &self,
                user_id: $crate::user::UserId,
            ) -> Result<Vec<$crate::store::Session>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ", session_columns!(), " FROM auth_sessions s WHERE s.user_id = $1"
                ))
                .bind(user_id.0)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                rows.iter().map(|row| session_from_row(row, 0)).collect()
            }

            async fn reauthenticate_session(
                &self,
                token: &$crate::token::TokenHash,
                now_ms: i64,
                methods: $crate::AuthMethods,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE auth_sessions SET authenticated_at_ms = $2, methods = methods | $3 \
                     WHERE token_hash = $1",
                )
                .bind(&token.as_bytes()[..])
                .bind(now_ms)
                .bind(methods.bits())
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                self.changes.publish($crate::store::Change::Session(*token));
                Ok(result.rows_affected() > 0)
            }

            async fn create_token(
                &self,
                token: $crate::store::EmailToken,
                keep_others: Option<u32>,
                mail: &[$crate::store::OutgoingMail],
                answers: Option<i64>,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                if let Some(id) = answers {
                    // First, so of two workers answering one request the second waits
                    // here and then finds it gone.
                    let answered = sqlx::query(
                        "DELETE FROM auth_outbox WHERE id = $1 AND request IS NOT NULL",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                    if answered.rows_affected() == 0 {
                        return Err($crate::store::StoreError::NotFound);
                    }
                }
                if let Some(keep) = keep_others {
                    // As for sessions: the row holding this very hash stays, so a collision
                    // is a Duplicate, never an overwrite. The newest `keep` others stay too.
                    sqlx::query(
                        "DELETE FROM auth_tokens \
                         WHERE user_id = $1 AND purpose = $2 AND token_hash <> $3 \
                           AND token_hash NOT IN (SELECT token_hash FROM auth_tokens \
                             WHERE user_id = $1 AND purpose = $2 AND token_hash <> $3 \
                             ORDER BY created_at_ms DESC, token_hash DESC LIMIT $4)",
                    )
                    .bind(token.user_id.0)
                    .bind(token.purpose.as_str())
                    .bind(&token.hash.as_bytes()[..])
                    .bind(i64::from(keep))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                }
                insert_token_on(&mut tx, &token).await?;
                queue_mail_on(&mut tx, mail).await?;
                tx.commit().await.map_err($crate::store::map_sqlx)
            }

            async fn queue_mail(
                &self,
                mail: &[$crate::store::OutgoingMail],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                queue_mail_on(&mut tx, mail).await?;
                tx.commit().await.map_err($crate::store::map_sqlx)
            }

            async fn queue_mail_request(
                &self,
                request: &$crate::store::MailRequest,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO auth_outbox (sender, recipient, message, created_at_ms, \
                       next_attempt_ms, attempts, expires_at_ms, request) \
                     VALUES ('', $1, $2, $3, $3, 0, $4, $5)",
                )
                .bind(&request.email)
                .bind(&[][..] as &[u8])
                .bind(request.created_at_ms)
                .bind(request.expires_at_ms)
                .bind(request.purpose.as_str())
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn claim_mail(
                &self,
                now_ms: i64,
                lease_until_ms: i64,
                limit: u32,
            ) -> Result<Vec<$crate::store::QueuedMail>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    "UPDATE auth_outbox SET next_attempt_ms = $2, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM auth_outbox \
                       WHERE next_attempt_ms <= $1 AND expires_at_ms > $1 \
                       ORDER BY id LIMIT $3", $claim_lock, ") \
                     RETURNING ", outbox_columns!()
                ))
                .bind(now_ms)
                .bind(lease_until_ms)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                let mut claimed = rows
                    .iter()
                    .filter_map(|row| queued_mail_from_row(row).transpose())
                    .collect::<Result<Vec<_>, _>>()?;
                claimed.sort_by_key(|m| m.id);
                Ok(claimed)
            }

            async fn finish_mail(&self, id: i64) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query("DELETE FROM auth_outbox WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected() > 0)
            }

            async fn retry_mail(
                &self,
                id: i64,
                next_attempt_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE auth_outbox SET next_attempt_ms = $2 WHERE id = $1")
                    .bind(id)
                    .bind(next_attempt_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn find_token(
                &self,
                hash: &$crate::token::TokenHash,
                purpose: $crate::store::TokenPurpose,
                now_ms: i64,
            ) -> Result<
                Option<($crate::store::EmailToken, $crate::user::User)>,
                $crate::store::StoreError,
            > {
                let row = sqlx::query(concat!(
                    "SELECT ", user_columns!(), ", ", token_columns!(),
                    " FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE ",
                    valid_token!()
                ))
                .bind(&hash.as_bytes()[..])
                .bind(purpose.as_str())
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((
                        token_from_row(&row, $crate::store::sql::USER_COLUMNS)?,
                        user_from_row(&row)?,
                    ))),
                }
            }

            async fn redeem_token(
                &self,
                hash: &$crate::token::TokenHash,
                purpose: $crate::store::TokenPurpose,
                now_ms: i64,
                update: $crate::store::UserUpdate,
            ) -> Result<
                Option<($crate::store::EmailToken, $crate::user::User)>,
                $crate::store::StoreError,
            > {
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                // The DELETE is the claim: of concurrent redemptions, one deletes the row
                // and the others find nothing (PostgreSQL re-checks the row after waiting
                // for the winner's lock; SQLite runs one writer at a time).
                let row = sqlx::query(concat!(
                    "DELETE FROM auth_tokens AS t WHERE EXISTS (SELECT 1 FROM auth_users u \
                     WHERE u.id = t.user_id AND ", valid_token!(), ") RETURNING ",
                    token_returning!()
                ))
                .bind(&hash.as_bytes()[..])
                .bind(purpose.as_str())
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
                .map_err($crate::store::map_sqlx)?;
                let Some(row) = row else { return Ok(None) };
                let token = token_from_row(&row, 0)?;
                if !update_user_on(&mut tx, token.user_id, &update).await? {
                    return Ok(None);
                }
                let user = sqlx::query(concat!(
                    "SELECT ", user_columns!(), " FROM auth_users u WHERE u.id = $1"
                ))
                .bind(token.user_id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err($crate::store::map_sqlx)?;
                let user = user_from_row(&user)?;
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                self.changes.publish($crate::store::Change::User(user.id));
                Ok(Some((token, user)))
            }

            async fn increment_counter(
                &self,
                key: &str,
                now_ms: i64,
                window_ms: i64,
            ) -> Result<$crate::store::Counter, $crate::store::StoreError> {
                let query = sqlx::query(
                    "INSERT INTO auth_counters (key, count, window_ends_ms) VALUES ($1, 1, $3) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN auth_counters.window_ends_ms <= $2 THEN 1 \
                                    ELSE auth_counters.count + 1 END, \
                       window_ends_ms = CASE WHEN auth_counters.window_ends_ms <= $2 THEN $3 \
                                    ELSE auth_counters.window_ends_ms END \
                     RETURNING count, window_ends_ms",
                )
                .bind(key)
                .bind(now_ms)
                .bind(now_ms.saturating_add(window_ms));
                counter_from_row(&returning_one(query.fetch_all(&self.pool).await)?)
            }

            async fn get_counter(
                &self,
                key: &str,
                now_ms: i64,
            ) -> Result<Option<$crate::store::Counter>, $crate::store::StoreError> {
                let row = sqlx::query(
                    "SELECT count, window_ends_ms FROM auth_counters \
                     WHERE key = $1 AND window_ends_ms > $2",
                )
                .bind(key)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                row.as_ref().map(counter_from_row).transpose()
            }

            async fn release_counter(
                &self,
                key: &str,
                window_ends_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE auth_counters SET count = count - 1 \
                     WHERE key = $1 AND window_ends_ms = $2 AND count > 0",
                )
                .bind(key)
                .bind(window_ends_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn reset_counter(&self, key: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM auth_counters WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                Ok(())
            }

            async fn delete_expired(
                &self,
                cutoffs: $crate::store::ExpiryCutoffs,
            ) -> Result<$crate::store::Swept, $crate::store::StoreError> {
                let now_ms = cutoffs.now_ms;
                // Each kind of expiry through its index, a batch per short transaction, so
                // a sweep of a large table neither reads it whole nor holds its locks long.
                let mut sessions = 0;
                for (condition, bound) in [
                    ("expires_at_ms <= $1", now_ms),
                    ("remembered = FALSE AND last_seen_ms <= $1", cutoffs.idle_cutoff_ms),
                    (
                        "remembered = TRUE AND last_seen_ms <= $1",
                        cutoffs.remembered_idle_cutoff_ms,
                    ),
                ] {
                    let statement = format!(
                        "DELETE FROM auth_sessions WHERE token_hash IN \
                         (SELECT token_hash FROM auth_sessions WHERE {condition} LIMIT $2)"
                    );
                    // Expired sessions are refused by every instance on its own, cached or
                    // not: their removal is not a change to announce (QUIET_SWEEP, where the
                    // backend announces changes from triggers, tells them so).
                    sessions += sweep_batches(&self.pool, &statement, bound, QUIET_SWEEP).await?;
                }
                let mut swept = [0u64; 3];
                for (count, (table, key, column)) in swept.iter_mut().zip([
                    ("auth_tokens", "token_hash", "expires_at_ms"),
                    ("auth_counters", "key", "window_ends_ms"),
                    ("auth_outbox", "id", "expires_at_ms"),
                ]) {
                    let statement = format!(
                        "DELETE FROM {table} WHERE {key} IN \
                         (SELECT {key} FROM {table} WHERE {column} <= $1 LIMIT $2)"
                    );
                    *count = sweep_batches(&self.pool, &statement, now_ms, None).await?;
                }
                let [tokens, counters, mail] = swept;
                Ok($crate::store::Swept::new(sessions, tokens, counters, mail))
            }

            async fn add_factors(
                &self,
                factors: Vec<$crate::store::NewFactor>,
                replace: Option<($crate::user::UserId, $crate::store::FactorKind)>,
            ) -> Result<Vec<i64>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                // Each user's row is locked (and found) by a write first: a SQLite transaction
                // that read before writing could not wait for another writer's lock.
                let mut users: Vec<i64> = factors.iter().map(|f| f.user_id.0).collect();
                users.extend(replace.map(|(user_id, _)| user_id.0));
                users.sort_unstable();
                users.dedup();
                for user_id in users {
                    let locked = sqlx::query(
                        "UPDATE auth_users SET password_hash = password_hash WHERE id = $1",
                    )
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                    if locked.rows_affected() == 0 {
                        return Err($crate::store::StoreError::NotFound);
                    }
                }
                if let Some((user_id, kind)) = replace {
                    sqlx::query("DELETE FROM auth_factors WHERE user_id = $1 AND kind = $2")
                        .bind(user_id.0)
                        .bind(kind.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                }
                let mut ids = Vec::with_capacity(factors.len());
                for factor in factors {
                    let row = sqlx::query(
                        "INSERT INTO auth_factors \
                           (user_id, kind, credential_id, name, secret, counter, confirmed, \
                            created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    )
                    .bind(factor.user_id.0)
                    .bind(factor.kind.as_str())
                    .bind(&factor.credential_id)
                    .bind(&factor.name)
                    .bind(&factor.secret)
                    .bind(factor.counter)
                    .bind(factor.confirmed)
                    .bind(factor.created_at_ms)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($crate::store::map_sqlx)?;
                    ids.push(row.try_get(0).map_err($crate::store::map_sqlx)?);
                }
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                Ok(ids)
            }

            async fn list_factors(
                &self,
                user_id: $crate::user::UserId,
            ) -> Result<Vec<$crate::store::Factor>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ", factor_columns!(), " FROM auth_factors f \
                     WHERE f.user_id = $1 ORDER BY f.id"
                ))
                .bind(user_id.0)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                rows.iter().map(|row| factor_from_row(row, 0)).collect()
            }

            async fn find_factor_by_credential(
                &self,
                credential_id: &str,
            ) -> Result<
                Option<($crate::store::Factor, $crate::user::User)>,
                $crate::store::StoreError,
            > {
                let row = sqlx::query(concat!(
                    "SELECT ", user_columns!(), ", ", factor_columns!(),
                    " FROM auth_factors f JOIN auth_users u ON u.id = f.user_id \
                     WHERE f.credential_id = $1"
                ))
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((
                        factor_from_row(&row, super::sql::USER_COLUMNS)?,
                        user_from_row(&row)?,
                    ))),
                }
            }

            async fn update_factor(
                &self,
                user_id: $crate::user::UserId,
                id: i64,
                update: $crate::store::FactorUpdate,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE auth_factors SET \
                       counter = COALESCE($3, counter), \
                       secret = COALESCE($4, secret), \
                       name = COALESCE($5, name), \
                       confirmed = (confirmed OR $6), \
                       last_used_ms = COALESCE($7, last_used_ms) \
                     WHERE user_id = $1 AND id = $2 AND ($8 IS NULL OR counter < $8)",
                )
                .bind(user_id.0)
                .bind(id)
                .bind(update.counter)
                .bind(update.secret)
                .bind(update.name)
                .bind(update.confirm)
                .bind(update.last_used_ms)
                .bind(update.counter_below)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected() > 0)
            }

            async fn delete_factors(
                &self,
                user_id: $crate::user::UserId,
                kind: Option<$crate::store::FactorKind>,
                id: Option<i64>,
            ) -> Result<u64, $crate::store::StoreError> {
                let result = sqlx::query(
                    "DELETE FROM auth_factors WHERE user_id = $1 \
                     AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR id = $3)",
                )
                .bind(user_id.0)
                .bind(kind.map($crate::store::FactorKind::as_str))
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected())
            }

            async fn add_identity(
                &self,
                identity: $crate::store::NewIdentity,
            ) -> Result<i64, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut tx = self.pool.begin().await.map_err($crate::store::map_sqlx)?;
                // A write first, locking (and finding) the user: see `add_factors`.
                let locked =
                    sqlx::query("UPDATE auth_users SET password_hash = password_hash WHERE id = $1")
                        .bind(identity.user_id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                if locked.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                let row = sqlx::query(
                    "INSERT INTO auth_identities \
                       (user_id, provider, subject, email, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(identity.user_id.0)
                .bind(&identity.provider)
                .bind(&identity.subject)
                .bind(&identity.email)
                .bind(identity.created_at_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err($crate::store::map_sqlx)?;
                let id = row.try_get(0).map_err($crate::store::map_sqlx)?;
                tx.commit().await.map_err($crate::store::map_sqlx)?;
                Ok(id)
            }

            async fn find_identity(
                &self,
                provider: &str,
                subject: &str,
            ) -> Result<
                Option<($crate::store::Identity, $crate::user::User)>,
                $crate::store::StoreError,
            > {
                let row = sqlx::query(concat!(
                    "SELECT ", user_columns!(), ", ", identity_columns!(),
                    " FROM auth_identities i JOIN auth_users u ON u.id = i.user_id \
                     WHERE i.provider = $1 AND i.subject = $2"
                ))
                .bind(provider)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((
                        identity_from_row(&row, super::sql::USER_COLUMNS)?,
                        user_from_row(&row)?,
                    ))),
                }
            }

            async fn list_identities(
                &self,
                user_id: $crate::user::UserId,
            ) -> Result<Vec<$crate::store::Identity>, $crate::store::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ", identity_columns!(), " FROM auth_identities i \
                     WHERE i.user_id = $1 ORDER BY i.id"
                ))
                .bind(user_id.0)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::store::map_sqlx)?;
                rows.iter().map(|row| identity_from_row(row, 0)).collect()
            }

            async fn delete_identity(
                &self,
                user_id: $crate::user::UserId,
                id: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let result =
                    sqlx::query("DELETE FROM auth_identities WHERE user_id = $1 AND id = $2")
                        .bind(user_id.0)
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err($crate::store::map_sqlx)?;
                Ok(result.rows_affected() > 0)
            }

            $($more)*
        }
    };
}

pub(crate) use factor_columns;
pub(crate) use identity_columns;
pub(crate) use impl_sql_store;
pub(crate) use outbox_columns;
pub(crate) use session_columns;
pub(crate) use session_join;
pub(crate) use token_columns;
pub(crate) use token_returning;
pub(crate) use user_columns;
pub(crate) use valid_token;
