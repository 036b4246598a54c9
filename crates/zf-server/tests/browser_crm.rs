//! An accountant's day in a real browser. Headless Chromium drives the real server over HTTPS:
//! a supervisor signs in with a password and an authenticator code, creates a client, tags it,
//! signs a contract with its PDF, takes the client's tax UKey into custody and assigns the
//! client to an accountant; the accountant signs in (zh-CN), opens the client, adds a contact,
//! generates this year's filings and marks one filed, adds a period's financial record, uploads
//! a document and downloads it again, checks the UKey out, and finds the client's overdue
//! filings on the deadlines dashboard. Every page is checked for script (none), the stylesheet
//! and the language, and the run ends without a console error or CSP violation.

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use std::time::{Duration, Instant};

use chromium::{
    assert_no_errors, check_page, choose_file, chromium, click_and_wait, eval, fill,
    is_client_detail, text_of, visit, Chromium, STEP,
};
use chromiumoxide::Page;
use common::{Session, TestServer};
use zf_domain::{IdNumber, Uscc};
use zf_policy::Role;

const PASSWORD: &str = "A fresh pass phrase for tests";
const SUPERVISOR: &str = "wangzhuguan";
const ACCOUNTANT: &str = "lisi";
const COMPANY: &str = "上海账房浏览器测试科技有限公司";

/// Clicks a submit button and waits until `condition` (a script expression) holds on the
/// document that loads. The condition must be false on the page the click leaves, because the
/// form posts back to the page it is on and the path alone cannot tell the two apart.
async fn submit_until(page: &Page, button: &str, what: &str, condition: &str) {
    page.find_element(button)
        .await
        .unwrap_or_else(|e| panic!("find {button}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {button}: {e}"));
    let _ = tokio::time::timeout(STEP, page.wait_for_navigation()).await;
    let probe = format!("document.readyState === 'complete' && !!({condition})");
    let deadline = Instant::now() + STEP;
    while eval(page, &probe).await != Ok(true.into()) {
        if Instant::now() > deadline {
            let body = eval(page, "document.body ? document.body.innerText : ''")
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what}; page text: {body}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets a field the browser draws its own widget for (a date, a select) to `value`.
async fn set_value(page: &Page, selector: &str, value: &str) {
    let set = format!(
        "(() => {{ const e = document.querySelector({sel}); e.value = {val}; return e.value }})()",
        sel = serde_json::to_string(selector).expect("json"),
        val = serde_json::to_string(value).expect("json"),
    );
    assert_eq!(
        eval(page, &set).await.expect("set value"),
        value,
        "value of {selector}"
    );
}

async fn count(page: &Page, selector: &str) -> usize {
    let n = eval(
        page,
        &format!(
            "document.querySelectorAll({}).length",
            serde_json::to_string(selector).unwrap()
        ),
    )
    .await
    .expect("count");
    n.as_u64().expect("a number") as usize
}

/// The cells of each row of a table, as the page shows them.
async fn rows(page: &Page, table: &str) -> Vec<Vec<String>> {
    let v = eval(
        page,
        &format!(
            "Array.from(document.querySelectorAll({})).map(tr => Array.from(tr.cells).map(td => td.innerText.trim()))",
            serde_json::to_string(&format!("{table} tbody tr")).unwrap()
        ),
    )
    .await
    .expect("read table");
    serde_json::from_value(v).expect("rows of text")
}

/// Signs in through the pages: password, then the authenticator's next code.
async fn sign_in(page: &Page, server: &TestServer, session: &Session) {
    visit(page, server, "/login", "/login").await;
    check_page(page, "zh-CN").await;
    fill(page, "#username", &session.username).await;
    fill(page, "#password", PASSWORD).await;
    click_and_wait(
        page,
        "form.card button[type=submit]",
        "the second-factor page",
        |p| p == "/login/second-factor",
    )
    .await;
    check_page(page, "zh-CN").await;
    let authenticator = session.authenticator.as_ref().expect("an authenticator");
    fill(page, "#code", &server.totp_code(authenticator)).await;
    click_and_wait(
        page,
        "form.card[action='/login/second-factor'] button[type=submit]",
        "the client list after signing in",
        |p| p == "/clients",
    )
    .await;
    check_page(page, "zh-CN").await;
}

/// Opens one of the client's tabs from the tab strip.
async fn open_tab(page: &Page, detail: &str, tab: &str) {
    let target = format!("{detail}/{tab}");
    click_and_wait(
        page,
        &format!("nav.tabs a[href='{target}']"),
        &target,
        |p| p == target,
    )
    .await;
    check_page(page, "zh-CN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accountants_day_in_headless_chromium() {
    let Some(executable) = chromium() else {
        return;
    };
    let started = Instant::now();
    let server = TestServer::start(common::Backend::Sqlite)
        .await
        .expect("server");
    let supervisor = server.signed_in(SUPERVISOR, Role::Supervisor).await;
    let accountant = server.signed_in(ACCOUNTANT, Role::Accountant).await;
    let uscc = Uscc::with_check_char("91310000MA1FL0042").expect("uscc");
    let id_number = IdNumber::with_check_char("11010519800101042").expect("id number");
    let files = tempfile::tempdir().expect("files");
    let contract_pdf = files.path().join("代理记账合同-签署版.pdf");
    std::fs::write(&contract_pdf, b"%PDF-1.4\n% signed contract\n%%EOF\n").expect("pdf");
    let licence: Vec<u8> = [
        b"%PDF-1.7\n% business licence scan\n".as_slice(),
        &(0..=255u8).collect::<Vec<_>>(),
        b"\n%%EOF\n",
    ]
    .concat();
    let licence_pdf = files.path().join("营业执照扫描件.pdf");
    std::fs::write(&licence_pdf, &licence).expect("pdf");
    let today = zf_app::crm::filings::today();

    let chromium = Chromium::launch(&executable, &server).await;
    let (page, problems) = chromium.page().await;

    // --- The supervisor sets the client up. ---------------------------------------------------
    sign_in(&page, &server, &supervisor).await;
    click_and_wait(&page, "a[href='/clients/new']", "/clients/new", |p| {
        p == "/clients/new"
    })
    .await;
    fill(&page, "#name", COMPANY).await;
    fill(&page, "#uscc", uscc.as_str()).await;
    fill(&page, "#legal_rep_name", "赵丽").await;
    fill(&page, "#legal_rep_id_number", id_number.as_str()).await;
    let detail = click_and_wait(
        &page,
        "form.card button[type=submit]",
        "the new client's page",
        is_client_detail,
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(text_of(&page, "main h1").await, COMPANY);
    assert_eq!(text_of(&page, "#client-assigned").await, "未分配");

    // Keep the client's details up to date: tags.
    fill(&page, "#tags", "重点客户，月度").await;
    submit_until(
        &page,
        "#edit-client button[type=submit]",
        "the tags on the client page",
        "document.querySelector('#client-tags')",
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(text_of(&page, "#client-tags").await, "月度、重点客户");

    // A yearly bookkeeping contract, then its signed PDF.
    open_tab(&page, &detail, "contracts").await;
    set_value(&page, "#billing_cycle", "yearly").await;
    fill(&page, "#fee", "3,600").await;
    set_value(&page, "#ends_on", &format!("{}-12-31", today.year() + 1)).await;
    submit_until(
        &page,
        "#new-contract button[type=submit]",
        "the new contract",
        "document.querySelector('table.contracts')",
    )
    .await;
    check_page(&page, "zh-CN").await;
    let contracts = rows(&page, "table.contracts").await;
    assert_eq!(contracts.len(), 1, "{contracts:?}");
    assert_eq!(contracts[0][0], "代理记账");
    assert_eq!(contracts[0][1], "3,600.00");
    assert_eq!(contracts[0][2], "按年");
    assert_eq!(contracts[0][4], "履行中");
    choose_file(&page, "form.attach input[type=file]", &contract_pdf).await;
    submit_until(
        &page,
        "form.attach button[type=submit]",
        "the signed PDF beside the contract",
        "document.querySelector('table.contracts a.download')",
    )
    .await;
    check_page(&page, "zh-CN").await;

    // The client's tax UKey goes into the firm's safe.
    open_tab(&page, &detail, "custody").await;
    set_value(&page, "form.add-custody select", "tax_ukey").await;
    submit_until(
        &page,
        "form.add-custody button[type=submit]",
        "the UKey in custody",
        "document.querySelector('table.custody')",
    )
    .await;
    assert_eq!(text_of(&page, "table.custody td.status").await, "在保险柜");

    // Assign it to the accountant.
    visit(&page, &server, &detail, &detail).await;
    fill(&page, "#accountant", ACCOUNTANT).await;
    fill(&page, "#team", "一组").await;
    submit_until(
        &page,
        "#assign-client button[type=submit]",
        "the assignment on the client page",
        "document.querySelector('#client-team')",
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(text_of(&page, "#client-assigned").await, "已分配");
    assert_eq!(text_of(&page, "#client-team").await, "一组");

    click_and_wait(
        &page,
        "header form[action='/logout'] button[type=submit]",
        "the sign-in page after signing out",
        |p| p == "/login",
    )
    .await;

    // --- The accountant's day. ----------------------------------------------------------------
    sign_in(&page, &server, &accountant).await;
    assert_eq!(text_of(&page, "main h1").await, "企业客户");
    let list = rows(&page, "main table").await;
    assert_eq!(list.len(), 1, "the assigned client, and only it: {list:?}");
    assert_eq!(list[0][0], COMPANY);
    click_and_wait(&page, "main table tbody a", "the client's page", |p| {
        p == detail
    })
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(
        text_of(&page, "dl.card .sensitive").await,
        id_number.as_str()
    );
    // An accountant may edit the client but not reassign it.
    assert_eq!(count(&page, "#edit-client").await, 1);
    assert_eq!(count(&page, "#assign-client").await, 0);

    // A contact.
    open_tab(&page, &detail, "contacts").await;
    fill(&page, "#name", "钱小会").await;
    fill(&page, "#position", "出纳").await;
    fill(&page, "#mobile", "13912345678").await;
    submit_until(
        &page,
        "form.card button[type=submit]",
        "the new contact",
        "document.querySelector('main table')",
    )
    .await;
    check_page(&page, "zh-CN").await;
    let contacts = rows(&page, "main table").await;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0][0], "钱小会");
    assert_eq!(contacts[0][1], "出纳");
    assert_eq!(contacts[0][2], "13912345678");

    // The contract is there to read, but not to change.
    open_tab(&page, &detail, "contracts").await;
    assert_eq!(rows(&page, "table.contracts").await[0][1], "3,600.00");
    assert_eq!(count(&page, "#new-contract").await, 0);

    // This year's filings, one of them marked filed.
    open_tab(&page, &detail, "filings").await;
    submit_until(
        &page,
        "form.generate button[type=submit]",
        "this year's filings",
        "document.querySelector('table.filings')",
    )
    .await;
    check_page(&page, "zh-CN").await;
    let generated = count(&page, "table.filings tbody tr").await;
    let overdue_before = count(&page, "tr.filing-overdue").await;
    assert!(generated >= 12, "a year of filings: {generated}");
    let (first, left_overdue) = if overdue_before > 0 {
        ("tr.filing-overdue form button", overdue_before - 1)
    } else {
        ("table.filings tbody tr form button", 0)
    };
    submit_until(
        &page,
        first,
        "a filing marked filed",
        "document.querySelectorAll('tr.filing-filed').length === 1",
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(count(&page, "tr.filing-overdue").await, left_overdue);
    assert_eq!(text_of(&page, "tr.filing-filed td.status").await, "已申报");

    // A period's figures, typed in yuan the way accountants write them.
    open_tab(&page, &detail, "financials").await;
    fill(&page, "#period", &format!("{}-01", today.year())).await;
    fill(&page, "#revenue", "123,456.78").await;
    fill(&page, "#cost", "100000").await;
    fill(&page, "#vat", "1,234.56").await;
    fill(&page, "#cit", "0").await;
    fill(&page, "#iit_withheld", "88.8").await;
    fill(&page, "#bank", "招商银行上海分行").await;
    fill(&page, "#account", "6225 8801 2345 6789").await;
    submit_until(
        &page,
        "#new-financial button[type=submit]",
        "the financial record",
        "document.querySelector('table.financials')",
    )
    .await;
    check_page(&page, "zh-CN").await;
    let books = rows(&page, "table.financials").await;
    assert_eq!(books.len(), 1, "{books:?}");
    assert_eq!(
        books[0][..7],
        [
            format!("{}-01", today.year()),
            "123,456.78".into(),
            "100,000.00".into(),
            "23,456.78".into(),
            "1,234.56".into(),
            "0.00".into(),
            "88.80".into(),
        ]
    );
    assert!(
        books[0][7].contains("6225880123456789"),
        "the account number in full for the accountant: {}",
        books[0][7]
    );

    // A scanned licence up, and down again byte for byte. Chromium has once (in CI, on a
    // loaded machine) delivered this form's body cut short; the server then refuses the upload
    // with 400 "incomplete multipart stream" and stores nothing, and a person sends it again.
    // That path is followed here rather than failing the run; twice in a row still fails.
    open_tab(&page, &detail, "documents").await;
    for attempt in 1.. {
        set_value(&page, "#kind", "business_licence").await;
        choose_file(&page, "#file", &licence_pdf).await;
        submit_until(
            &page,
            "form.card button[type=submit]",
            "the uploaded document",
            "document.querySelectorAll('table.documents tbody tr').length === 2 \
               || document.body.innerText.includes('incomplete multipart stream')",
        )
        .await;
        if count(&page, "table.documents tbody tr").await == 2 {
            break;
        }
        assert_eq!(attempt, 1, "the upload arrived cut short twice");
        eprintln!(
            "the browser sent the upload cut short; refused, nothing stored; sending it again"
        );
        problems.forgive(&format!("{detail}/documents"));
        let tab = format!("{detail}/documents");
        visit(&page, &server, &tab, &tab).await;
        assert_eq!(
            count(&page, "table.documents tbody tr").await,
            1,
            "a refused upload stores nothing"
        );
    }
    check_page(&page, "zh-CN").await;
    let documents = rows(&page, "table.documents").await;
    assert_eq!(
        documents.len(),
        2,
        "the licence and the signed contract: {documents:?}"
    );
    assert!(
        documents
            .iter()
            .any(|d| d[0] == "营业执照" && d[1] == "营业执照扫描件.pdf"),
        "{documents:?}"
    );
    let link = eval(
        &page,
        "Array.from(document.querySelectorAll('table.documents a.download')) \
           .find(a => a.innerText.trim() === '营业执照扫描件.pdf').getAttribute('href')",
    )
    .await
    .expect("the licence's link");
    let link = link.as_str().expect("an href");
    let before = eval(&page, "location.href").await.expect("href");
    page.find_element(format!("table.documents a[href='{link}'][download]"))
        .await
        .expect("find the licence's link")
        .click()
        .await
        .expect("click the licence's link");
    chromium.downloaded(&licence).await;
    assert_eq!(eval(&page, "location.href").await.expect("href"), before);

    // The UKey goes out for a day of filing.
    open_tab(&page, &detail, "custody").await;
    assert_eq!(text_of(&page, "table.custody td.status").await, "在保险柜");
    fill(&page, "form.move input[name=reason]", "去税务局办理申报").await;
    let due_back = today.checked_add_days(1).expect("tomorrow");
    set_value(
        &page,
        "form.move input[name=due_back]",
        &due_back.as_string(),
    )
    .await;
    submit_until(
        &page,
        "form.move button[type=submit]",
        "the UKey checked out",
        "document.querySelector('table.custody td.status').innerText.trim() === '已借出'",
    )
    .await;
    check_page(&page, "zh-CN").await;
    assert_eq!(
        rows(&page, "table.custody").await[0][2],
        due_back.as_string()
    );

    // The deadlines dashboard lists what is overdue, this client's filings among it.
    click_and_wait(&page, "nav.main a[href='/deadlines']", "/deadlines", |p| {
        p == "/deadlines"
    })
    .await;
    check_page(&page, "zh-CN").await;
    let overdue = rows(&page, "#overdue table").await;
    assert_eq!(overdue.len(), left_overdue, "{overdue:?}");
    assert!(overdue.iter().all(|r| r[0] == COMPANY), "{overdue:?}");
    assert!(overdue.iter().all(|r| r[4] == "逾期"), "{overdue:?}");
    if today.month() > 1 {
        // Every January deadline has passed by February, and none was filed but one.
        assert!(
            !overdue.is_empty(),
            "overdue filings on {}",
            today.as_string()
        );
    }
    assert!(
        text_of(&page, "#overdue h2")
            .await
            .contains(&format!("({left_overdue})")),
        "the count in the heading"
    );
    // The dashboard's other pages are one click away for an accountant.
    for href in ["/follow-ups", "/custody/overdue", "/arrears"] {
        assert_eq!(
            count(&page, &format!("nav.dashboard a[href='{href}']")).await,
            1,
            "{href}"
        );
    }

    assert_no_errors(&page, &problems).await;
    chromium.close().await;
    let took = started.elapsed();
    eprintln!("browser CRM test took {took:?}");
    assert!(took < Duration::from_secs(90), "took {took:?}");
}
