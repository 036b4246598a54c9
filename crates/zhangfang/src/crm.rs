//! `zhangfang import`, `export` and `demo`: the client list in and out of files on the server,
//! and a synthetic firm to explore. Each acts as a named user, so the user's role and scope
//! decide exactly as they would for a request, and every write carries its audit event.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::ExposeSecret;
use zf_app::crm::batch::{RecordCreate, RecordInput};
use zf_app::crm::contacts::ContactInput;
use zf_app::crm::contracts::ContractInput;
use zf_app::crm::filings::GenerateFilings;
use zf_app::crm::financials::{BankAccountInput, FinancialInput};
use zf_app::crm::interactions::InteractionInput;
use zf_app::{App, RequestMeta};
use zf_audit::Actor;
use zf_domain::{
    BankAccount, BillingCycle, ClientName, ClientStatus, ContractStatus, ContractType, Date, Fen,
    IdNumber, InteractionKind, Mobile, NewClient, Notes, Period, PersonName, Position, ShortText,
    Tags, TaxpayerType, Uscc, UserId, Username,
};
use zf_policy::{Operation, Role};
use zf_server::Instance;
use zf_tabular::Format;

use crate::config::Settings;
use crate::user::os_user;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A CSV (UTF-8 or GBK) or XLSX file with the client list's Chinese column headers.
    pub file: PathBuf,
    /// The user the import is done as; their role must allow creating clients.
    #[arg(long = "as")]
    pub as_user: String,
    /// Import the valid rows and write the invalid ones to FILE.errors.csv, instead of writing
    /// nothing while any row is invalid.
    #[arg(long)]
    pub partial: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Where to write the file; `.csv` or `.xlsx` chooses the format.
    #[arg(long)]
    pub out: PathBuf,
    /// The user the export is done as; their role must allow exporting, and decides whether
    /// ID numbers are in full or masked.
    #[arg(long = "as")]
    pub as_user: String,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How many client companies to create.
    #[arg(long, default_value_t = 200)]
    pub clients: u32,
    /// Seed of the generator, for a data set that is the same every time.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

fn meta() -> RequestMeta {
    RequestMeta {
        request_id: None,
        source: Some("local".into()),
        session_ref: None,
        device: Some(format!("zhangfang CLI ({})", os_user())),
    }
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

async fn open(settings: &Settings) -> anyhow::Result<Instance> {
    crate::provider::open_instance(settings).await
}

pub async fn import(settings: Settings, args: ImportArgs) -> anyhow::Result<()> {
    let user = Username::parse(&args.as_user).context("invalid --as")?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let instance = open(&settings).await?;
    let grant = instance
        .app
        .operator_grant(&user, Operation::ClientImport)
        .await?;
    let bar = spinner("checking every row, then writing");
    let report = instance
        .app
        .client_import(&grant, &bytes, args.partial, &meta())
        .await;
    bar.finish_and_clear();
    let report = report?;
    for e in &report.errors {
        eprintln!("row {}, column {}: {}", e.row, e.column, e.reason);
    }
    if !report.ignored_columns.is_empty() {
        eprintln!("ignored columns: {}", report.ignored_columns.join(", "));
    }
    if let Some(rejected) = &report.rejected_rows {
        let path = args.file.with_extension("errors.csv");
        std::fs::write(&path, rejected)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "the rejected rows, with their reasons, are in {}",
            path.display()
        );
    }
    println!(
        "{} of {} rows imported{}",
        report.imported,
        report.rows,
        if report.written {
            ""
        } else {
            "; nothing was written"
        }
    );
    if report.errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} problem(s) in {}",
            report.errors.len(),
            args.file.display()
        )
    }
}

pub async fn export(settings: Settings, args: ExportArgs) -> anyhow::Result<()> {
    let user = Username::parse(&args.as_user).context("invalid --as")?;
    let format = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Format::from_extension)
        .context("--out must end in .csv or .xlsx")?;
    let instance = open(&settings).await?;
    let grant = instance
        .app
        .operator_grant(&user, Operation::ClientExport)
        .await?;
    let bar = spinner("reading and opening every client in scope");
    let export = instance.app.client_export(&grant, format, &meta()).await;
    bar.finish_and_clear();
    let export = export?;
    // Written beside the target and renamed, so a half-written file never has the real name.
    let tmp = args.out.with_extension("partial");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(&export.bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &args.out)?;
    println!(
        "{} clients written to {} (ID numbers {}; the export is in the audit log)",
        export.rows,
        args.out.display(),
        if export.revealed { "in full" } else { "masked" }
    );
    Ok(())
}

const CITIES: &[&str] = &[
    "上海", "北京", "深圳", "广州", "杭州", "南京", "成都", "武汉", "苏州", "福州",
];
const WORDS: &[&str] = &[
    "恒信", "华诚", "安泰", "鼎盛", "瑞丰", "万通", "中和", "博远", "正源", "嘉禾", "新创", "同德",
];
const TRADES: &[&str] = &[
    "商贸",
    "科技",
    "餐饮管理",
    "建筑工程",
    "电子商务",
    "文化传媒",
    "物流",
    "咨询服务",
    "医疗器械",
    "服装",
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛",
];
const AUTHORITIES: &[&str] = &[
    "国家税务总局上海市浦东新区税务局",
    "国家税务总局深圳市南山区税务局",
    "国家税务总局杭州市西湖区税务局",
];
/// Region codes of the cities above, for plausible USCCs and ID numbers.
const REGIONS: &[&str] = &[
    "310115", "110105", "440305", "440106", "330106", "320102", "510104", "420102", "320505",
    "350102",
];

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

fn person(rng: &mut StdRng) -> PersonName {
    let name = format!(
        "{}{}{}",
        pick(rng, SURNAMES),
        pick(rng, GIVEN),
        if rng.gen_bool(0.5) {
            pick(rng, GIVEN)
        } else {
            ""
        }
    );
    PersonName::parse(&name).unwrap_or_else(|_| PersonName::parse("张伟").expect("a valid name"))
}

/// A client with valid USCC and ID check characters, a plausible name, and a mixed pipeline.
fn demo_client(rng: &mut StdRng, n: u32) -> anyhow::Result<NewClient> {
    let city = rng.gen_range(0..CITIES.len());
    let region = REGIONS[city];
    let name = format!(
        "{}{}{}{}有限公司",
        CITIES[city],
        pick(rng, WORDS),
        pick(rng, TRADES),
        if n > 0 { n.to_string() } else { String::new() }
    );
    let uscc = Uscc::with_check_char(&format!("91{region}{:09}", 100_000_000 + n))
        .context("generated USCC")?;
    let birth = format!(
        "{}{:02}{:02}",
        rng.gen_range(1960..2000),
        rng.gen_range(1..13),
        rng.gen_range(1..29)
    );
    let id = IdNumber::with_check_char(&format!("{region}{birth}{:03}", rng.gen_range(0..1000)))
        .context("generated ID number")?;
    let status = match rng.gen_range(0..20) {
        0 => ClientStatus::Lead,
        1 | 2 => ClientStatus::Signed,
        3 => ClientStatus::Churned,
        _ => ClientStatus::InService,
    };
    Ok(NewClient {
        name: ClientName::parse(&name)?,
        uscc,
        taxpayer_type: if rng.gen_bool(0.3) {
            TaxpayerType::General
        } else {
            TaxpayerType::SmallScale
        },
        legal_rep_name: person(rng),
        legal_rep_id_number: id,
        status: Some(status),
        tags: Some(Tags::parse(if rng.gen_bool(0.2) {
            "重点客户"
        } else {
            ""
        })?),
        team: Some(ShortText::parse(if rng.gen_bool(0.5) {
            "一组"
        } else {
            "二组"
        })?),
        notes: None,
        registered_capital: Some(Fen::new(rng.gen_range(10..1000) * 10_000 * 100)?),
        tax_authority: Some(ShortText::parse(pick(rng, AUTHORITIES))?),
    })
}

/// The demo firm's staff: created on the first run, printed with their one-time passwords.
async fn demo_staff(app: &App, show: bool) -> anyhow::Result<(Username, Vec<UserId>)> {
    let staff = [
        ("demo-zhuguan", Role::Supervisor),
        ("demo-kuaiji1", Role::Accountant),
        ("demo-kuaiji2", Role::Accountant),
        ("demo-kuaiji3", Role::Accountant),
        ("demo-xiaoshou", Role::Sales),
        ("demo-shenji", Role::Auditor),
    ];
    let mut accountants = Vec::new();
    for (name, role) in staff {
        let username = Username::parse(name)?;
        let existing = app.store().user_by_username(&username).await?;
        let id = match existing {
            Some(u) => u.id,
            None => {
                let secret = app
                    .add_user(username.clone(), role, None, Actor::cli(&os_user()))
                    .await?;
                if show {
                    println!(
                        "  {name:<14} {:<10} one-time password: {}",
                        role.label_zh(),
                        secret.password.expose_secret()
                    );
                }
                app.store()
                    .user_by_username(&username)
                    .await?
                    .context("the user just created")?
                    .id
            }
        };
        if role == Role::Accountant {
            accountants.push(id);
        }
    }
    Ok((Username::parse("demo-zhuguan")?, accountants))
}

pub async fn demo(settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    let instance = open(&settings).await?;
    println!("Demo staff (existing accounts keep their passwords):");
    demo_firm(&instance.app, args.clients, args.seed, true).await?;
    println!(
        "{} demo clients created. Sign in as demo-zhuguan (or an accountant) with the one-time password printed above.",
        args.clients
    );
    Ok(())
}

/// Adds the demo staff (printing new accounts' one-time passwords when `show_staff`) and
/// `clients` clients with their records; shared with `bench backup`, which needs a firm to
/// measure.
pub async fn demo_firm(app: &App, clients: u32, seed: u64, show_staff: bool) -> anyhow::Result<()> {
    let (boss, accountants) = demo_staff(app, show_staff).await?;
    let meta = meta();
    let create = app.operator_grant(&boss, Operation::ClientCreate).await?;
    let grants = DemoGrants::decide(app, &boss).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    // Numbering continues after the clients already there, so a second run adds, not collides.
    let start = u32::try_from(app.store().client_count(zf_policy::Scope::All).await?).unwrap_or(0);
    let bar = ProgressBar::new(u64::from(clients));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} clients {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut done = 0;
    while done < clients {
        let n = (clients - done).min(DEMO_BATCH);
        let mut batch = Vec::with_capacity(n as usize);
        for i in 0..n {
            let assigned = accountants
                .get(rng.gen_range(0..accountants.len().max(1)))
                .copied();
            batch.push((demo_client(&mut rng, start + done + i + 1)?, assigned));
        }
        let ids = app.clients_create_many(&create, batch, None, &meta).await?;
        let mut records = Vec::with_capacity(ids.len() * 7);
        for id in ids {
            records.extend(demo_records(&grants, id, &mut rng)?);
        }
        app.records_create_many(records, &meta).await?;
        bar.inc(u64::from(n));
        done += n;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Clients per transaction: each commit costs an fsync, and about 40 rows per client make a
/// batch of this size a few megabytes, which keeps a write transaction short enough for a
/// server sharing the database.
const DEMO_BATCH: u32 = 500;

/// The demo supervisor's grants, decided once for the whole run.
struct DemoGrants {
    contact: zf_policy::Grant,
    contract: zf_policy::Grant,
    financial: zf_policy::Grant,
    filing: zf_policy::Grant,
    interaction: zf_policy::Grant,
}

impl DemoGrants {
    async fn decide(app: &App, boss: &Username) -> anyhow::Result<Self> {
        Ok(DemoGrants {
            contact: app.operator_grant(boss, Operation::ContactCreate).await?,
            contract: app.operator_grant(boss, Operation::ContractCreate).await?,
            financial: app.operator_grant(boss, Operation::FinancialCreate).await?,
            filing: app.operator_grant(boss, Operation::FilingGenerate).await?,
            interaction: app
                .operator_grant(boss, Operation::InteractionCreate)
                .await?,
        })
    }
}

/// A client's daily-work records, as the use-cases a request would call take them; they are
/// written by the batched form of those use-cases.
fn demo_records<'g>(
    grants: &'g DemoGrants,
    id: zf_domain::ClientId,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<RecordCreate<'g>>> {
    let record = |grant, input| RecordCreate {
        grant,
        client: id,
        input,
    };
    let mobile = Mobile::parse(&format!(
        "1{}{:09}",
        rng.gen_range(3..10),
        rng.gen_range(0..1_000_000_000u32)
    ))?;
    let mut out = vec![record(
        &grants.contact,
        RecordInput::Contact(ContactInput {
            name: person(rng),
            position: Some(Position::parse("财务负责人")?),
            mobile: Some(mobile),
            email: None,
            wechat: None,
            id_number: None,
            primary: true,
            version: None,
        }),
    )];
    out.push(record(
        &grants.contract,
        RecordInput::Contract(ContractInput {
            contract_type: ContractType::Bookkeeping,
            fee: Fen::new(rng.gen_range(2..10) * 10_000)?,
            billing_cycle: if rng.gen_bool(0.5) {
                BillingCycle::Monthly
            } else {
                BillingCycle::Quarterly
            },
            starts_on: Date::new(2026, 1, 1)?,
            ends_on: Date::new(2026, 12, 31)?,
            status: ContractStatus::Active,
            notes: None,
            version: None,
        }),
    ));
    for month in 1..=3 {
        let revenue = rng.gen_range(50_000..5_000_000) * 100;
        out.push(record(
            &grants.financial,
            RecordInput::Financial(FinancialInput {
                period: Period::month(2026, month)?,
                revenue: Fen::new(revenue)?,
                cost: Fen::new(revenue * rng.gen_range(50..95) / 100)?,
                vat: Fen::new(revenue * 3 / 100)?,
                cit: Fen::new(0)?,
                iit_withheld: Fen::new(rng.gen_range(0..50_000) * 100)?,
                bank_accounts: vec![BankAccountInput {
                    bank: ShortText::parse("中国工商银行")?,
                    number: BankAccount::parse(&format!(
                        "6222{:015}",
                        rng.gen_range(0..1_000_000_000_000_000u64)
                    ))?,
                }],
                notes: None,
                version: None,
            }),
        ));
    }
    out.push(record(
        &grants.filing,
        RecordInput::Filings(GenerateFilings { year: 2026 }),
    ));
    out.push(record(
        &grants.interaction,
        RecordInput::Interaction(InteractionInput {
            kind: InteractionKind::Call,
            occurred_on: Date::new(2026, rng.gen_range(1..12), rng.gen_range(1..28))?,
            summary: Notes::parse("电话确认本月票据已寄出")?,
            follow_up_on: None,
            follow_up_done: false,
            version: None,
        }),
    ));
    Ok(out)
}
