use axum::http::HeaderMap;

/// The UI's languages. Chinese is the default; English is chosen with a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

pub const LANG_COOKIE: &str = "__Host-zf_lang";

#[derive(Clone, Copy, Debug)]
pub enum Msg {
    AppName,
    Home,
    SignIn,
    SignOut,
    Username,
    Password,
    CurrentPassword,
    NewPassword,
    ChangePassword,
    MustChangePassword,
    LoginFailed,
    Clients,
    NewClient,
    ClientName,
    Uscc,
    TaxpayerType,
    LegalRepName,
    LegalRepIdNumber,
    Create,
    Search,
    SearchByIdNumber,
    NoClients,
    Previous,
    Next,
    Total,
    Created,
    Updated,
    Version,
    Forbidden,
    NotFound,
    CsrfFailed,
    SignedInAs,
    SensitiveReadAudited,
    Hidden,
    SearchResults,
    Back,
    AuditLog,
    AuditUser,
    AuditClient,
    AuditAction,
    AuditSource,
    AuditFrom,
    AuditTo,
    AuditTime,
    AuditRecord,
    AuditFields,
    AuditOutcome,
    Alerts,
    NoAlerts,
    Severity,
    Rule,
    Summary,
    Status,
    Acknowledge,
    Resolve,
    Reveal,
    RevealReason,
}

impl Lang {
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        match crate::policy::cookie(headers, LANG_COOKIE) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn t(self, m: Msg) -> &'static str {
        use Msg::*;
        let (zh, en) = match m {
            AppName => ("账房", "Zhangfang"),
            Home => ("首页", "Home"),
            SignIn => ("登录", "Sign in"),
            SignOut => ("退出登录", "Sign out"),
            Username => ("用户名", "Username"),
            Password => ("密码", "Password"),
            CurrentPassword => ("当前密码", "Current password"),
            NewPassword => (
                "新密码（至少 12 个字符）",
                "New password (at least 12 characters)",
            ),
            ChangePassword => ("修改密码", "Change password"),
            MustChangePassword => (
                "首次登录须先将一次性密码改为您自己的密码。",
                "Replace your one-time password with your own before anything else.",
            ),
            LoginFailed => (
                "用户名或密码错误，或该账户无法登录。",
                "The username or password is wrong, or the account cannot sign in.",
            ),
            Clients => ("企业客户", "Clients"),
            NewClient => ("新建客户", "New client"),
            ClientName => ("企业名称", "Company name"),
            Uscc => ("统一社会信用代码", "Unified social credit code"),
            TaxpayerType => ("纳税人类型", "Taxpayer type"),
            LegalRepName => ("法定代表人", "Legal representative"),
            LegalRepIdNumber => ("法定代表人身份证号", "Legal representative's ID number"),
            Create => ("创建", "Create"),
            Search => ("查找", "Search"),
            SearchByIdNumber => ("按身份证号精确查找", "Find by ID number (exact match)"),
            NoClients => ("暂无客户。", "No clients yet."),
            Previous => ("上一页", "Previous"),
            Next => ("下一页", "Next"),
            Total => ("共", "Total"),
            Created => ("创建时间", "Created"),
            Updated => ("更新时间", "Updated"),
            Version => ("版本", "Version"),
            Forbidden => ("无权访问", "Access denied"),
            NotFound => ("页面不存在", "Page not found"),
            CsrfFailed => (
                "表单已过期或来源不明，请返回重新提交。",
                "The form expired or did not come from this site; go back and submit it again.",
            ),
            SignedInAs => ("当前用户", "Signed in as"),
            SensitiveReadAudited => (
                "查看敏感信息已记入审计日志。",
                "Viewing sensitive data has been recorded in the audit log.",
            ),
            Hidden => ("（无权查看）", "(hidden)"),
            SearchResults => ("查找结果", "Search results"),
            Back => ("返回", "Back"),
            AuditLog => ("审计日志", "Audit log"),
            AuditUser => ("用户", "User"),
            AuditClient => ("客户编号", "Client id"),
            AuditAction => ("操作", "Action"),
            AuditSource => ("来源地址", "Source address"),
            AuditFrom => ("起始时间", "From"),
            AuditTo => ("截止时间", "To"),
            AuditTime => ("时间", "Time"),
            AuditRecord => ("对象", "Record"),
            AuditFields => ("字段", "Fields"),
            AuditOutcome => ("结果", "Outcome"),
            Alerts => ("安全告警", "Security alerts"),
            NoAlerts => ("暂无告警。", "No alerts."),
            Severity => ("级别", "Severity"),
            Rule => ("规则", "Rule"),
            Summary => ("摘要", "Summary"),
            Status => ("状态", "Status"),
            Acknowledge => ("确认", "Acknowledge"),
            Resolve => ("关闭", "Resolve"),
            Reveal => ("显示完整号码", "Show in full"),
            RevealReason => (
                "查看原因（将记入审计日志）",
                "Reason (recorded in the audit log)",
            ),
        };
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}
