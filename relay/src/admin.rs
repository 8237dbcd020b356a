//! `eyeward-relay admin`: provisioning from the command line, on the same database whether or
//! not the server runs. The only way to create accounts, add cameras or reset a password.

use crate::auth::{Token, hash_identity_password, hash_password};
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::objects::Objects;
use crate::store::{Account, Audit, Home, NewAccount, NewCamera, Store};
use clap::{Args, Subcommand};
use eyeward::dispatch::GeoPoint;
use eyeward::identity::IdentityPassword;
use eyeward::{
    CameraId, CameraModel, CameraSource, CustomerId, DisplayName, Email, GuardCenter, Language,
    Password, Plan, Role, SourcePolicy,
};
use serde_json::{Value, json};
use std::io::BufRead;

/// Prefix of agent tokens, so a leaked one is recognisable.
pub const AGENT_TOKEN_PREFIX: &str = "ewa_";

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Customer (home owner) accounts.
    #[command(subcommand)]
    Customer(AccountCommand<CustomerExtra>),
    /// Guard-center operator accounts.
    #[command(subcommand)]
    Operator(AccountCommand<NoExtra>),
    /// Members of customers' households (made only by a customer's invitation).
    #[command(subcommand)]
    Member(MemberCommand),
    /// Cameras and their agent tokens.
    #[command(subcommand)]
    Camera(CameraCommand),
    /// Guards of the guard centers, and their phones' tokens.
    #[command(subcommand)]
    Guard(GuardCommand),
    /// Copies this single-node installation (SQLite and pictures in `data_dir`) into
    /// PostgreSQL and, with `--objects s3`, the bucket of `[storage] s3`. Stop the relay
    /// first; run it again after a failure to go on where it stopped. Then set
    /// `[database] url` and start the relay.
    MigrateStorage(MigrateStorage),
    /// Backs the relay up into a folder while it serves: a consistent copy of the database
    /// and the pictures and clips its rows name, with a manifest of sizes and checksums.
    /// Into the same folder again, only what it lacks is copied (docs/operations.md).
    Backup {
        /// The backup folder (made if missing).
        #[arg(long)]
        to: std::path::PathBuf,
        /// Megabytes a second the pictures are copied at, at most, so that the relay serving
        /// beside the backup keeps its pace (0: as fast as the disks go).
        #[arg(long, default_value_t = crate::backup::DEFAULT_MAX_RATE)]
        max_rate: u32,
    },
    /// Checks a backup whole (manifest, every file's checksum, the database copy) without
    /// restoring it.
    VerifyBackup {
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Restores a backup into the empty installation the config names (data_dir, or the
    /// database and bucket it names), after checking it whole; the relay is stopped.
    Restore {
        #[arg(long)]
        from: std::path::PathBuf,
    },
}

impl AdminCommand {
    /// Whether the command opens the configured store itself (see `cli`): a restore and
    /// its checks must not make a database where there is none.
    pub fn opens_its_own_store(&self) -> bool {
        matches!(
            self,
            AdminCommand::MigrateStorage(_)
                | AdminCommand::Backup { .. }
                | AdminCommand::VerifyBackup { .. }
                | AdminCommand::Restore { .. }
        )
    }
}

/// Runs a command that opens what it needs itself ([`AdminCommand::opens_its_own_store`]).
pub async fn run_on_config(config: &Config, cmd: AdminCommand) -> Result<Output, Error> {
    match cmd {
        AdminCommand::MigrateStorage(args) => migrate_storage(config, args).await,
        AdminCommand::Backup { to, max_rate } => {
            let (store, objects) = crate::backup::open_installation(config).await?;
            let done = crate::backup::backup(config, &store, &objects, &to, max_rate).await?;
            let human = format!(
                "backup in {}: {} events, {} rows, {} objects ({} copied now, {} bytes), \
                 schema {} ({}), in {:.1} s{}",
                to.display(),
                done.events,
                done.rows,
                done.objects,
                done.objects_copied,
                done.bytes_copied,
                done.schema_version,
                done.engine,
                done.seconds,
                if done.vanished > 0 {
                    format!(
                        "; {} objects were deleted before they could be copied",
                        done.vanished
                    )
                } else {
                    String::new()
                },
            );
            Ok(Output {
                json: serde_json::to_value(&done).unwrap_or_default(),
                human,
            })
        }
        AdminCommand::VerifyBackup { from } => {
            let found = crate::backup::verify(&from).await?;
            Ok(Output {
                human: format!(
                    "the backup in {} is sound: {} events, {} rows, {} objects, schema {} \
                     of relay {}",
                    from.display(),
                    found.events,
                    found.rows,
                    found.objects,
                    found.schema_version,
                    found.relay_version
                ),
                json: serde_json::to_value(&found).unwrap_or_default(),
            })
        }
        AdminCommand::Restore { from } => {
            let done = crate::backup::restore(config, &from).await?;
            Ok(Output {
                human: format!(
                    "restored {} events, {} rows and {} objects from {}; schema {} → {}",
                    done.backup.events,
                    done.backup.rows,
                    done.backup.objects,
                    from.display(),
                    done.backup.schema_version,
                    done.schema_version
                ),
                json: serde_json::to_value(&done).unwrap_or_default(),
            })
        }
        _ => Err(Error::internal("this command runs on an opened store")),
    }
}

#[derive(Debug, Args)]
pub struct MigrateStorage {
    /// The PostgreSQL database to copy into (migrated first); its TLS and password come
    /// from `[database]`.
    #[arg(long)]
    pub to: url::Url,
    /// Where the pictures go: `s3`, the bucket of `[storage] s3`. Without it they stay in
    /// `data_dir`.
    #[arg(long, value_parser = ["s3"])]
    pub objects: Option<String>,
}

/// Runs `admin migrate-storage` with `config`: the database, then the pictures.
pub async fn migrate_storage(config: &Config, args: MigrateStorage) -> Result<Output, Error> {
    if !matches!(args.to.scheme(), "postgres" | "postgresql") || args.to.host().is_none() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "--to must be a postgres:// URL with a host",
        ));
    }
    let bucket = match args.objects {
        None => None,
        Some(_) => Some(Objects::bucket(config.storage.s3.as_ref().ok_or_else(
            || {
                Error::new(
                    ErrorKind::InvalidArgument,
                    "--objects s3 copies into the bucket of [storage] s3, which is not set",
                )
            },
        )?)?),
    };
    let source = Store::open_sqlite(&config.data_dir).await?;
    let target = Store::open_postgres(&args.to, &config.database).await?;
    let tables = source.copy_into(&target).await?;
    let pictures = match &bucket {
        Some(bucket) => {
            bucket.check().await?;
            Some(Objects::folder(&config.data_dir).copy_into(bucket).await?)
        }
        None => None,
    };
    let rows: i64 = tables.iter().map(|t| t.rows).sum();
    let copied: u64 = tables.iter().map(|t| t.copied).sum();
    let mut human = format!(
        "{rows} rows in {} tables are in PostgreSQL ({copied} copied now)",
        tables.len()
    );
    if let Some(p) = pictures {
        human.push_str(&format!(
            "; {} pictures are in the bucket ({} copied now)",
            p.pictures, p.copied
        ));
    }
    Ok(Output {
        json: json!({ "tables": tables, "pictures": pictures }),
        human,
    })
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand<E: Args> {
    /// Creates an account. The password is read from stdin (one line).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_from_str::<GuardCenter>)]
        guard_center: GuardCenter,
        #[command(flatten)]
        extra: E,
    },
    /// Lists the accounts.
    List,
    /// Removes an account and everything it owns.
    Remove {
        #[arg(long)]
        id: i64,
    },
    /// Sets a new password (read from stdin) after an identity check, and ends the account's
    /// sessions. Forgotten passwords are reset only this way, never by mail.
    SetPassword {
        #[arg(long)]
        id: i64,
    },
    /// Removes every passkey of the account after an identity check (all of them lost), and
    /// ends its sessions.
    RemovePasskeys {
        #[arg(long)]
        id: i64,
    },
    /// Sets a customer's identity-check password (read from stdin), after the company's own
    /// check that the caller is the customer: a forgotten one is reset only this way. The
    /// customer is told by mail; their sessions, password and passkeys stay as they are.
    SetIdentityPassword {
        #[arg(long)]
        id: i64,
    },
    /// Sets where a customer's home is (for guards sent there).
    SetHome {
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        home: HomeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Lists the members of every household.
    List,
    /// Sets a member's new password (read from stdin) after an identity check, and ends their
    /// sessions.
    SetPassword {
        #[arg(long)]
        id: i64,
    },
    /// Removes every passkey of a member after an identity check, and ends their sessions.
    RemovePasskeys {
        #[arg(long)]
        id: i64,
    },
    /// Removes a member from their household (as its holder would).
    Remove {
        #[arg(long)]
        id: i64,
    },
}

/// Where a customer's home is.
#[derive(Debug, Args)]
pub struct HomeArgs {
    /// The postal address guards are sent to.
    #[arg(long)]
    address: Option<String>,
    /// The home's location, `LATITUDE,LONGITUDE`, for the console's arrival estimates.
    #[arg(long, value_parser = parse_from_str::<GeoPoint>)]
    location: Option<GeoPoint>,
}

impl HomeArgs {
    fn home(&self) -> Result<Home, Error> {
        let address = match &self.address {
            Some(a) => Some(DisplayName::parse(a)?.as_str().to_owned()),
            None => None,
        };
        // The notes are the customer's own to keep (`PUT /api/home`).
        Ok(Home {
            address,
            location: self.location,
            notes: Default::default(),
        })
    }
}

/// Options only customers have.
#[derive(Debug, Args)]
pub struct CustomerExtra {
    /// The language of the customer's pages and mail.
    #[arg(long, default_value = "ja", value_parser = parse_from_str::<Language>)]
    lang: Language,
    #[command(flatten)]
    home: HomeArgs,
}

/// Operators have no extra options.
#[derive(Debug, Args)]
pub struct NoExtra {}

#[derive(Debug, Subcommand)]
pub enum CameraCommand {
    /// Provisions a camera for a customer. With `--source agent` an agent token is printed,
    /// once: give it to the camera's agent.
    Add {
        #[arg(long)]
        customer: i64,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_from_str::<CameraModel>)]
        model: CameraModel,
        /// Fixed for the camera's life: a camera-only camera can never get dispatch later.
        #[arg(long, value_parser = parse_from_str::<Plan>)]
        plan: Plan,
        /// `agent`, or the camera's `rtsp://[user:password@]host[:port]/path`.
        #[arg(long)]
        source: String,
    },
    /// Lists cameras (sources shown without credentials).
    List {
        /// Only this customer's cameras.
        #[arg(long)]
        customer: Option<i64>,
    },
    /// Removes a camera.
    Remove {
        #[arg(long)]
        id: i64,
    },
    /// Issues a new agent token for an agent camera; the old one stops working at once.
    NewToken {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Adds a guard to a guard center. Prints the token their phone reports its position
    /// with (`POST /guard/v1/position`), once.
    Add {
        #[arg(long, value_parser = parse_from_str::<GuardCenter>)]
        guard_center: GuardCenter,
        #[arg(long)]
        name: String,
        /// Where the guard is now, `LATITUDE,LONGITUDE`.
        #[arg(long, value_parser = parse_from_str::<GeoPoint>)]
        position: Option<GeoPoint>,
    },
    /// Lists the guards.
    List,
    /// Removes a guard.
    Remove {
        #[arg(long)]
        id: i64,
    },
}

/// Prefix of guards' phone tokens.
pub const GUARD_TOKEN_PREFIX: &str = "ewg_";

fn parse_from_str<T: std::str::FromStr<Err = eyeward::Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: eyeward::Error| e.to_string())
}

/// What a command prints: a JSON object, and the same for people.
pub struct Output {
    pub json: Value,
    pub human: String,
}

/// Runs one admin command against `store`, reading passwords from `stdin`; `sources` is the
/// rule for direct cameras' hosts (from the config).
pub async fn run(
    store: &Store,
    sources: SourcePolicy,
    cmd: AdminCommand,
    stdin: impl BufRead,
) -> Result<Output, Error> {
    let audit = Audit::admin(eyeward::clock::Clock::real().now());
    match cmd {
        AdminCommand::Customer(c) => {
            let home = match &c {
                AccountCommand::Add { extra, .. } => Some(extra.home.home()?),
                _ => None,
            };
            let out = account(store, Role::Customer, c, |e| e.lang, stdin, &audit).await?;
            if let (Some(home), Some(id)) = (home, out.json["id"].as_i64())
                && (home.address.is_some() || home.location.is_some())
            {
                store.set_home(CustomerId(id), &home, &audit).await?;
            }
            Ok(out)
        }
        AdminCommand::Operator(c) => {
            account(store, Role::Operator, c, |_| Language::Ja, stdin, &audit).await
        }
        AdminCommand::Member(c) => member(store, c, stdin, &audit).await,
        AdminCommand::Camera(c) => camera(store, sources, c, &audit).await,
        AdminCommand::Guard(c) => guard(store, c, &audit).await,
        AdminCommand::MigrateStorage(_)
        | AdminCommand::Backup { .. }
        | AdminCommand::VerifyBackup { .. }
        | AdminCommand::Restore { .. } => Err(Error::internal(
            "this command opens its own store (see `run_on_config`)",
        )),
    }
}

async fn account<E: Args>(
    store: &Store,
    role: Role,
    cmd: AccountCommand<E>,
    lang_of: impl Fn(&E) -> Language,
    stdin: impl BufRead,
    audit: &Audit,
) -> Result<Output, Error> {
    match cmd {
        AccountCommand::Add {
            email,
            name,
            guard_center,
            extra,
        } => {
            let password = read_password(stdin)?;
            let new = NewAccount {
                role,
                email: Email::parse(&email)?,
                name: DisplayName::parse(&name)?,
                guard_center,
                lang: lang_of(&extra),
                password_hash: hash_blocking(password).await?,
            };
            let id = store.create_account(new, audit).await?;
            Ok(Output {
                json: json!({ "id": id }),
                human: format!("created {role} {id}"),
            })
        }
        AccountCommand::List => {
            let accounts = store.accounts(role).await?;
            let human = accounts.iter().map(describe).collect::<Vec<_>>().join("\n");
            Ok(Output {
                json: json!({ format!("{role}s"): accounts }),
                human,
            })
        }
        AccountCommand::Remove { id } => {
            if !store.remove_account(role, id, audit).await? {
                return Err(Error::not_found(role.as_str()));
            }
            Ok(Output {
                json: json!({ "id": id, "removed": true }),
                human: format!("removed {role} {id}"),
            })
        }
        AccountCommand::SetHome { id, home } => {
            if role != Role::Customer
                || !store.set_home(CustomerId(id), &home.home()?, audit).await?
            {
                return Err(Error::not_found("customer"));
            }
            Ok(Output {
                json: json!({ "id": id, "home_set": true }),
                human: format!("home set for customer {id}"),
            })
        }
        AccountCommand::SetIdentityPassword { id } => {
            let word = IdentityPassword::new(&read_line(stdin, "identity-check password")?)?;
            let hash = hash_identity_password(word).await?;
            if role != Role::Customer
                || !store
                    .set_identity_password(CustomerId(id), &hash, audit, "identity.password_reset")
                    .await?
            {
                return Err(Error::not_found("customer"));
            }
            Ok(Output {
                json: json!({ "id": id, "identity_password_set": true }),
                human: format!(
                    "new identity-check password set for customer {id}; they are told by mail"
                ),
            })
        }
        AccountCommand::RemovePasskeys { id } => remove_passkeys(store, role, id, audit).await,
        AccountCommand::SetPassword { id } => set_password(store, role, id, stdin, audit).await,
    }
}

/// The password reset: a new password for `role` `id` (read from `stdin`), their sessions
/// ended.
async fn set_password(
    store: &Store,
    role: Role,
    id: i64,
    stdin: impl BufRead,
    audit: &Audit,
) -> Result<Output, Error> {
    let hash = hash_blocking(read_password(stdin)?).await?;
    if !store.set_password_hash(role, id, &hash, audit).await? {
        return Err(Error::not_found(role.as_str()));
    }
    Ok(Output {
        json: json!({ "id": id, "password_set": true }),
        human: format!("new password set for {role} {id}; their sessions were ended"),
    })
}

/// The passkey reset: every passkey of `role` `id` removed, their sessions ended.
async fn remove_passkeys(
    store: &Store,
    role: Role,
    id: i64,
    audit: &Audit,
) -> Result<Output, Error> {
    if !store.remove_all_passkeys(role, id, audit).await? {
        return Err(Error::not_found(role.as_str()));
    }
    Ok(Output {
        json: json!({ "id": id, "passkeys_removed": true }),
        human: format!("every passkey of {role} {id} removed; their sessions were ended"),
    })
}

async fn member(
    store: &Store,
    cmd: MemberCommand,
    stdin: impl BufRead,
    audit: &Audit,
) -> Result<Output, Error> {
    match cmd {
        MemberCommand::List => {
            let members = store.accounts(Role::Member).await?;
            let human = members
                .iter()
                .map(|m| {
                    let household = m.household.map_or(0, |h| h.0);
                    format!("{}\thousehold {household}", describe(m))
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "members": members }),
                human,
            })
        }
        MemberCommand::SetPassword { id } => {
            set_password(store, Role::Member, id, stdin, audit).await
        }
        MemberCommand::RemovePasskeys { id } => {
            remove_passkeys(store, Role::Member, id, audit).await
        }
        MemberCommand::Remove { id } => {
            let household = store
                .account(id)
                .await?
                .filter(|a| a.role == Role::Member)
                .and_then(|a| a.household)
                .ok_or_else(|| Error::not_found("member"))?;
            if !store.remove_member(household, id, audit).await? {
                return Err(Error::not_found("member"));
            }
            Ok(Output {
                json: json!({ "id": id, "removed": true }),
                human: format!("removed member {id} from household {household}"),
            })
        }
    }
}

fn describe(a: &Account) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        a.id, a.email, a.guard_center, a.lang, a.name
    )
}

async fn camera(
    store: &Store,
    sources: SourcePolicy,
    cmd: CameraCommand,
    audit: &Audit,
) -> Result<Output, Error> {
    match cmd {
        CameraCommand::Add {
            customer,
            name,
            model,
            plan,
            source,
        } => {
            let source = CameraSource::parse(&source)?;
            if let CameraSource::Rtsp(r) = &source {
                sources.check_source(r)?;
            }
            let token =
                matches!(source, CameraSource::Agent).then(|| Token::generate(AGENT_TOKEN_PREFIX));
            let new = NewCamera {
                customer_id: CustomerId(customer),
                name: DisplayName::parse(&name)?,
                model,
                plan,
                source,
                agent_token_hash: token.as_ref().map(|t| t.hash.clone()),
            };
            let id = store.add_camera(new, audit).await?;
            Ok(match token {
                Some(t) => Output {
                    json: json!({ "id": id, "agent_token": t.secret() }),
                    human: format!(
                        "added camera {id}\nagent token (shown only now): {}",
                        t.secret()
                    ),
                },
                None => Output {
                    json: json!({ "id": id }),
                    human: format!("added camera {id}"),
                },
            })
        }
        CameraCommand::List { customer } => {
            let cams = store.all_cameras().await?;
            let cams: Vec<_> = cams
                .into_iter()
                .filter(|c| customer.is_none_or(|id| c.customer_id.0 == id))
                .collect();
            let human = cams
                .iter()
                .map(|c| {
                    format!(
                        "{}\tcustomer {}\t{}\t{}\t{}\t{}",
                        c.id, c.customer_id, c.model, c.plan, c.source, c.name
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let json = cams
                .iter()
                .map(|c| {
                    let has_credentials = match &c.source {
                        CameraSource::Rtsp(r) => r.username().is_some() || r.password().is_some(),
                        CameraSource::Agent => false,
                    };
                    json!({
                        "id": c.id, "customer_id": c.customer_id, "name": c.name,
                        "model": c.model, "plan": c.plan, "source": c.source.to_string(),
                        "source_has_credentials": has_credentials,
                    })
                })
                .collect::<Vec<_>>();
            Ok(Output {
                json: json!({ "cameras": json }),
                human,
            })
        }
        CameraCommand::Remove { id } => {
            if !store.remove_camera(CameraId(id), audit).await? {
                return Err(Error::not_found("camera"));
            }
            Ok(Output {
                json: json!({ "id": id, "removed": true }),
                human: format!("removed camera {id}"),
            })
        }
        CameraCommand::NewToken { id } => {
            let token = Token::generate(AGENT_TOKEN_PREFIX);
            store
                .replace_agent_token(CameraId(id), &token.hash, audit)
                .await?;
            Ok(Output {
                json: json!({ "id": id, "agent_token": token.secret() }),
                human: format!(
                    "new agent token for camera {id} (shown only now): {}",
                    token.secret()
                ),
            })
        }
    }
}

async fn guard(store: &Store, cmd: GuardCommand, audit: &Audit) -> Result<Output, Error> {
    match cmd {
        GuardCommand::Add {
            guard_center,
            name,
            position,
        } => {
            let name = DisplayName::parse(&name)?;
            let token = Token::generate(GUARD_TOKEN_PREFIX);
            let id = store
                .add_guard(guard_center, name.as_str(), &token.hash, position, audit)
                .await?;
            Ok(Output {
                json: json!({ "id": id, "guard_token": token.secret() }),
                human: format!(
                    "added guard {id}\nphone token (shown only now): {}",
                    token.secret()
                ),
            })
        }
        GuardCommand::List => {
            let guards = store.guards(None).await?;
            let human = guards
                .iter()
                .map(|g| format!("{}\t{}\t{}", g.id, g.guard_center, g.name))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output {
                json: json!({ "guards": guards }),
                human,
            })
        }
        GuardCommand::Remove { id } => {
            if !store.remove_guard(id, audit).await? {
                return Err(Error::not_found("guard"));
            }
            Ok(Output {
                json: json!({ "id": id, "removed": true }),
                human: format!("removed guard {id}"),
            })
        }
    }
}

/// The password on one line of stdin.
fn read_password(stdin: impl BufRead) -> Result<Password, Error> {
    Ok(Password::new(&read_line(stdin, "password")?)?)
}

/// One line from stdin, without its line ending: the `what` a command reads there.
fn read_line(mut stdin: impl BufRead, what: &str) -> Result<String, Error> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| Error::bad_request(format!("cannot read the {what} from stdin: {e}")))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(Error::bad_request(format!("expected the {what} on stdin")));
    }
    Ok(line.to_owned())
}

async fn hash_blocking(password: Password) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::internal("password hash").with_source(e))?
}
