//! The batched creation of records (`records_create_many`, what `zhangfang demo` writes with)
//! against the single use-cases a request calls: the same inputs give records that read back
//! and decrypt to the same values through the normal use-cases, each with its creation event,
//! and a batch with one bad input writes nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use zf_app::crm::batch::{RecordCreate, RecordInput};
use zf_app::crm::contacts::ContactInput;
use zf_app::crm::contracts::ContractInput;
use zf_app::crm::filings::GenerateFilings;
use zf_app::crm::financials::{BankAccountInput, FinancialInput};
use zf_app::crm::interactions::InteractionInput;
use zf_app::{App, AppConfig, AppError, RequestMeta};
use zf_audit::Actor;
use zf_crypto::MasterKey;
use zf_domain::{
    BankAccount, BillingCycle, ClientId, ClientName, ContractStatus, ContractType, Date, Fen,
    IdNumber, InteractionKind, Mobile, NewClient, Notes, Period, PersonName, Position, ShortText,
    TaxpayerType, Username,
};
use zf_policy::{Grant, Operation, Role};
use zf_store::SqliteStore;

struct Firm {
    app: App,
    grants: BTreeMap<&'static str, Grant>,
    _dir: tempfile::TempDir,
}

impl Firm {
    async fn new() -> Firm {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).await.unwrap());
        let app = App::new(store, &MasterKey::generate(), AppConfig::default())
            .await
            .unwrap();
        let boss = Username::parse("zhuguan").unwrap();
        app.add_user(boss.clone(), Role::Supervisor, None, Actor::cli("test"))
            .await
            .unwrap();
        let mut grants = BTreeMap::new();
        for (name, op) in [
            ("client", Operation::ClientCreate),
            ("contact", Operation::ContactCreate),
            ("contract", Operation::ContractCreate),
            ("financial", Operation::FinancialCreate),
            ("filing", Operation::FilingGenerate),
            ("interaction", Operation::InteractionCreate),
            ("read_contact", Operation::ContactList),
            ("read_contract", Operation::ContractList),
            ("read_financial", Operation::FinancialList),
            ("read_filing", Operation::FilingList),
            ("read_interaction", Operation::InteractionList),
        ] {
            grants.insert(name, app.operator_grant(&boss, op).await.unwrap());
        }
        Firm {
            app,
            grants,
            _dir: dir,
        }
    }

    fn grant(&self, name: &str) -> &Grant {
        &self.grants[name]
    }

    async fn clients(&self, n: u32) -> Vec<ClientId> {
        let clients = (0..n)
            .map(|i| {
                let client = NewClient {
                    name: ClientName::parse(&format!("上海恒信商贸{i}有限公司")).unwrap(),
                    uscc: zf_domain::Uscc::with_check_char(&format!(
                        "91310115{:09}",
                        100_000_000 + i
                    ))
                    .unwrap(),
                    taxpayer_type: if i % 2 == 0 {
                        TaxpayerType::General
                    } else {
                        TaxpayerType::SmallScale
                    },
                    legal_rep_name: PersonName::parse("张伟").unwrap(),
                    legal_rep_id_number: IdNumber::with_check_char(&format!(
                        "31011519800101{:03}",
                        i
                    ))
                    .unwrap(),
                    status: None,
                    tags: None,
                    team: None,
                    notes: None,
                    registered_capital: None,
                    tax_authority: None,
                };
                (client, None)
            })
            .collect();
        self.app
            .clients_create_many(self.grant("client"), clients, None, &meta())
            .await
            .unwrap()
    }

    /// Every record of a client as the read use-cases show it, without what differs between
    /// two creations of the same input (ids, times, the client).
    async fn views(&self, client: ClientId) -> serde_json::Value {
        let app = &self.app;
        let m = meta();
        let strip = |v: serde_json::Value| {
            let mut list = match v {
                serde_json::Value::Array(a) => a,
                other => panic!("a list, not {other}"),
            };
            for item in &mut list {
                let o = item.as_object_mut().unwrap();
                for k in [
                    "id",
                    "client_id",
                    "client_name",
                    "created_at",
                    "updated_at",
                    "version",
                ] {
                    o.remove(k);
                }
            }
            list.sort_by_key(|v| v.to_string());
            serde_json::Value::Array(list)
        };
        let contacts = app.contact_list(self.grant("read_contact"), client, &m);
        let contracts = app.contract_list(self.grant("read_contract"), client, &m);
        let financials = app.financial_list(self.grant("read_financial"), client, &m);
        let filings = app.filing_list(self.grant("read_filing"), client);
        let interactions = app.interaction_list(self.grant("read_interaction"), client);
        serde_json::json!({
            "contacts": strip(serde_json::to_value(contacts.await.unwrap()).unwrap()),
            "contracts": strip(serde_json::to_value(contracts.await.unwrap()).unwrap()),
            "financials": strip(serde_json::to_value(financials.await.unwrap()).unwrap()),
            "filings": strip(serde_json::to_value(filings.await.unwrap()).unwrap()),
            "interactions": strip(serde_json::to_value(interactions.await.unwrap()).unwrap()),
        })
    }

    /// Audit actions counted over the events about `client` or one of its records.
    async fn actions_about(&self, client: ClientId) -> BTreeMap<String, usize> {
        let mut ids: HashSet<String> = HashSet::from([client.to_string()]);
        for kind in zf_store::RecordKind::ALL {
            let q = zf_store::RecordQuery::of_client(kind, client);
            for hit in self
                .app
                .store()
                .record_query(zf_policy::Scope::All, q, None)
                .await
                .unwrap()
            {
                ids.insert(hit.row.id.to_string());
            }
        }
        let mut counts = BTreeMap::new();
        for e in self.app.store().audit_events(0, 100_000).await.unwrap() {
            if e.record_id.as_ref().is_some_and(|r| ids.contains(r)) {
                *counts.entry(e.action).or_default() += 1;
            }
        }
        counts
    }
}

fn meta() -> RequestMeta {
    RequestMeta {
        source: Some("test".into()),
        ..RequestMeta::default()
    }
}

fn inputs(seed: u32) -> Vec<RecordInput> {
    let mut out = vec![
        RecordInput::Contact(ContactInput {
            name: PersonName::parse("李娜").unwrap(),
            position: Some(Position::parse("财务负责人").unwrap()),
            mobile: Some(Mobile::parse(&format!("1380013{:04}", seed)).unwrap()),
            email: None,
            wechat: None,
            id_number: Some(IdNumber::with_check_char("31011519900101123").unwrap()),
            primary: true,
            version: None,
        }),
        RecordInput::Contract(ContractInput {
            contract_type: ContractType::Bookkeeping,
            fee: Fen::new(30_000 + i64::from(seed)).unwrap(),
            billing_cycle: BillingCycle::Quarterly,
            starts_on: Date::new(2026, 1, 1).unwrap(),
            ends_on: Date::new(2026, 12, 31).unwrap(),
            status: ContractStatus::Active,
            notes: None,
            version: None,
        }),
    ];
    for month in 1..=3 {
        out.push(RecordInput::Financial(FinancialInput {
            period: Period::month(2026, month).unwrap(),
            revenue: Fen::new(1_000_000 * i64::from(month)).unwrap(),
            cost: Fen::new(600_000).unwrap(),
            vat: Fen::new(30_000).unwrap(),
            cit: Fen::new(0).unwrap(),
            iit_withheld: Fen::new(1_200).unwrap(),
            bank_accounts: vec![BankAccountInput {
                bank: ShortText::parse("中国工商银行").unwrap(),
                number: BankAccount::parse("6222020000000000123").unwrap(),
            }],
            notes: None,
            version: None,
        }));
    }
    out.push(RecordInput::Filings(GenerateFilings { year: 2026 }));
    out.push(RecordInput::Interaction(InteractionInput {
        kind: InteractionKind::Call,
        occurred_on: Date::new(2026, 3, 5).unwrap(),
        summary: Notes::parse("电话确认本月票据已寄出").unwrap(),
        follow_up_on: None,
        follow_up_done: false,
        version: None,
    }));
    out
}

/// Creates the inputs one use-case call at a time, as requests would.
async fn one_by_one(firm: &Firm, client: ClientId, inputs: Vec<RecordInput>) {
    let (app, m) = (&firm.app, meta());
    for input in inputs {
        match input {
            RecordInput::Contact(i) => {
                app.contact_create(firm.grant("contact"), client, i, &m)
                    .await
                    .unwrap();
            }
            RecordInput::Contract(i) => {
                app.contract_create(firm.grant("contract"), client, i, &m)
                    .await
                    .unwrap();
            }
            RecordInput::Financial(i) => {
                app.financial_create(firm.grant("financial"), client, i, &m)
                    .await
                    .unwrap();
            }
            RecordInput::Filings(r) => {
                app.filing_generate(firm.grant("filing"), client, r, &m)
                    .await
                    .unwrap();
            }
            RecordInput::Interaction(i) => {
                app.interaction_create(firm.grant("interaction"), client, i, &m)
                    .await
                    .unwrap();
            }
        }
    }
}

fn batch<'a>(firm: &'a Firm, client: ClientId, inputs: Vec<RecordInput>) -> Vec<RecordCreate<'a>> {
    inputs
        .into_iter()
        .map(|input| {
            let grant = match &input {
                RecordInput::Contact(_) => firm.grant("contact"),
                RecordInput::Contract(_) => firm.grant("contract"),
                RecordInput::Financial(_) => firm.grant("financial"),
                RecordInput::Filings(_) => firm.grant("filing"),
                RecordInput::Interaction(_) => firm.grant("interaction"),
            };
            RecordCreate {
                grant,
                client,
                input,
            }
        })
        .collect()
}

#[tokio::test]
async fn a_batch_writes_what_the_single_use_cases_write_with_every_creation_event() {
    let firm = Firm::new().await;
    let clients = firm.clients(6).await;
    // Clients 0 and 1 (one of each taxpayer type) one call at a time; the rest in one batch.
    for (n, &c) in clients[..2].iter().enumerate() {
        one_by_one(&firm, c, inputs(n as u32)).await;
    }
    let mut creates = Vec::new();
    for (n, &c) in clients[2..].iter().enumerate() {
        creates.extend(batch(&firm, c, inputs(n as u32)));
    }
    let created = firm
        .app
        .records_create_many(creates, &meta())
        .await
        .unwrap();

    let mut expected_created = 0;
    for n in 0..4 {
        // Client n + 2 has the taxpayer type of client n % 2, and for n < 2 the same inputs.
        let single = clients[n % 2];
        let batched = clients[n + 2];
        // Counted before any read below adds read events of its own.
        let actions = firm.actions_about(batched).await;
        let single_actions = firm.actions_about(single).await;
        let batched_views = firm.views(batched).await;
        if n < 2 {
            assert_eq!(batched_views, firm.views(single).await, "client {n}");
        }
        let filings = batched_views["filings"].as_array().unwrap().len();
        assert!(filings > 10, "a year of filing tasks, not {filings}");
        expected_created += 6 + filings as u64;

        // Each created record has its creation event, the filings their generation event;
        // the single calls' read-backs (a sensitive read per returned view) have no
        // counterpart, because a batch returns no view.
        assert_eq!(
            actions,
            BTreeMap::from([
                ("client_created".to_owned(), 1),
                ("filing_tasks_generated".to_owned(), 1),
                ("record_created".to_owned(), 6),
            ]),
            "batched client {n}"
        );
        for action in ["record_created", "filing_tasks_generated"] {
            assert_eq!(single_actions[action], actions[action], "{action}");
        }
    }
    assert_eq!(created, expected_created);
    assert!(firm.app.audit_verify(&[]).await.unwrap().is_intact());
}

#[tokio::test]
async fn a_batch_with_one_bad_input_or_a_wrong_grant_writes_nothing() {
    let firm = Firm::new().await;
    let clients = firm.clients(2).await;
    let events_before = firm.app.store().audit_head().await.unwrap();

    let mut creates = batch(&firm, clients[0], inputs(0));
    let mut bad = batch(&firm, clients[1], inputs(1));
    if let RecordInput::Contract(c) = &mut bad[1].input {
        c.ends_on = Date::new(2025, 12, 31).unwrap();
    }
    creates.extend(bad);
    let err = firm
        .app
        .records_create_many(creates, &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Invalid(_)), "{err:?}");

    let mut creates = batch(&firm, clients[0], inputs(0));
    creates[0].grant = firm.grant("contract");
    assert!(firm
        .app
        .records_create_many(creates, &meta())
        .await
        .is_err());

    let events_after = firm.app.store().audit_head().await.unwrap();
    assert_eq!(events_before.seq, events_after.seq);
    for c in clients {
        assert_eq!(
            firm.actions_about(c).await,
            BTreeMap::from([("client_created".to_owned(), 1)])
        );
        assert_eq!(firm.views(c).await["filings"].as_array().unwrap().len(), 0);
    }
}
