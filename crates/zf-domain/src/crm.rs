//! The closed lists a CRM record is classified by: statuses, kinds, stages.

use crate::code_enum::code_enum;
use crate::Date;

code_enum! {
    /// Where a client company stands with the firm.
    pub enum ClientStatus / ClientStatusError ("client status") {
        Lead = "lead", "潜在客户", "Lead";
        Signed = "signed", "已签约", "Signed";
        InService = "in_service", "服务中", "In service";
        Churned = "churned", "已流失", "Churned";
    }
}

impl ClientStatus {
    /// The moves a client's lifecycle allows. A lead cannot jump to "in
    /// service" because service starts from a signed contract, and a churned
    /// client comes back only by signing again. Staying put is not a move, so
    /// an edit that changes nothing is not recorded as a transition.
    pub const fn can_move_to(self, next: ClientStatus) -> bool {
        use ClientStatus::*;
        matches!(
            (self, next),
            (Lead, Signed)
                | (Lead, Churned)
                | (Signed, InService)
                | (Signed, Churned)
                | (InService, Churned)
                | (Churned, Signed)
        )
    }
}

code_enum! {
    /// What a service contract is for.
    pub enum ContractType / ContractTypeError ("contract type") {
        Bookkeeping = "bookkeeping", "代理记账", "Bookkeeping";
        Registration = "registration", "工商注册", "Company registration";
        RegistrationChange = "registration_change", "工商变更", "Registration change";
        Deregistration = "deregistration", "注销", "Deregistration";
        TaxFiling = "tax_filing", "税务申报", "Tax filing";
        Audit = "audit", "审计", "Audit";
        AnnualReport = "annual_report", "年报", "Annual report";
        Other = "other", "其他", "Other";
    }
}

code_enum! {
    /// How often a contract's fee falls due.
    pub enum BillingCycle / BillingCycleError ("billing cycle") {
        Monthly = "monthly", "按月", "Monthly";
        Quarterly = "quarterly", "按季", "Quarterly";
        Yearly = "yearly", "按年", "Yearly";
        OneOff = "one_off", "一次性", "One-off";
    }
}

impl BillingCycle {
    /// Months between two fees; `None` for a one-off fee, which never repeats.
    pub const fn months(self) -> Option<u32> {
        match self {
            BillingCycle::Monthly => Some(1),
            BillingCycle::Quarterly => Some(3),
            BillingCycle::Yearly => Some(12),
            BillingCycle::OneOff => None,
        }
    }
}

code_enum! {
    /// Where a service contract is in its life.
    pub enum ContractStatus / ContractStatusError ("contract status") {
        Draft = "draft", "草拟", "Draft";
        Active = "active", "履行中", "Active";
        Expired = "expired", "已到期", "Expired";
        Terminated = "terminated", "已终止", "Terminated";
    }
}

code_enum! {
    /// How the firm was in touch with a client.
    pub enum InteractionKind / InteractionKindError ("interaction kind") {
        Call = "call", "电话", "Call";
        Visit = "visit", "上门拜访", "Visit";
        /// Spelt `wechat`, one word, as the product name is.
        WeChat = "wechat", "微信", "WeChat";
        Meeting = "meeting", "会议", "Meeting";
        Email = "email", "邮件", "Email";
        Note = "note", "备注", "Note";
    }
}

code_enum! {
    /// Items a firm holds in custody for a client (代管物品). Each one lets its
    /// holder act for the company, which is why their hand-overs are tracked.
    pub enum CustodyKind / CustodyKindError ("custody item kind") {
        TaxUkey = "tax_ukey", "税务UKey", "Tax UKey";
        CaCertificate = "ca_certificate", "CA证书", "CA certificate";
        OfficialSeal = "official_seal", "公章", "Official seal";
        FinanceSeal = "finance_seal", "财务专用章", "Finance seal";
        InvoiceSeal = "invoice_seal", "发票专用章", "Invoice seal";
        LegalRepSeal = "legal_rep_seal", "法人章", "Legal representative's seal";
        BusinessLicence = "business_licence", "营业执照正副本", "Business licence (original and copy)";
        Other = "other", "其他", "Other";
    }
}

code_enum! {
    /// Progress of one tax filing.
    pub enum FilingStatus / FilingStatusError ("filing status") {
        Todo = "todo", "待办", "To do";
        InProgress = "in_progress", "办理中", "In progress";
        Filed = "filed", "已申报", "Filed";
        Overdue = "overdue", "逾期", "Overdue";
    }
}

impl FilingStatus {
    /// The status to show on `today`. Lateness is a fact about dates, not
    /// something staff record, so it is derived here rather than stored: an
    /// unfiled filing is overdue from the day after its due date. A stored
    /// `Overdue` is treated like `Todo`, so a due date moved later (the
    /// calendar changed) takes it back out of the overdue list.
    pub fn effective(self, due: Date, today: Date) -> FilingStatus {
        match self {
            FilingStatus::Filed => FilingStatus::Filed,
            _ if today > due => FilingStatus::Overdue,
            FilingStatus::Overdue => FilingStatus::Todo,
            other => other,
        }
    }
}

code_enum! {
    /// The taxes and statutory reports a firm files for its clients.
    pub enum TaxKind / TaxKindError ("tax kind") {
        Vat = "vat", "增值税", "VAT";
        Surcharges = "surcharges", "附加税费", "Surcharges";
        CitPrepayment = "cit_prepayment", "企业所得税预缴", "Corporate income tax prepayment";
        CitAnnual = "cit_annual", "企业所得税汇算清缴", "Corporate income tax annual settlement";
        IitWithholding = "iit_withholding", "个人所得税扣缴", "Individual income tax withholding";
        AnnualReport = "annual_report", "工商年报", "Annual report";
    }
}

code_enum! {
    /// A sales lead's stage in the pipeline.
    pub enum LeadStage / LeadStageError ("lead stage") {
        New = "new", "新线索", "New";
        Contacted = "contacted", "已联系", "Contacted";
        Quoted = "quoted", "已报价", "Quoted";
        Won = "won", "已成交", "Won";
        Lost = "lost", "已流失", "Lost";
    }
}

code_enum! {
    /// What a stored document is, as the person who uploaded it said.
    pub enum DocumentKind / DocumentKindError ("document kind") {
        BusinessLicence = "business_licence", "营业执照", "Business licence";
        IdCopy = "id_copy", "身份证复印件", "ID card copy";
        Contract = "contract", "合同", "Contract";
        FinancialStatement = "financial_statement", "财务报表", "Financial statement";
        TaxReturn = "tax_return", "纳税申报表", "Tax return";
        Other = "other", "其他", "Other";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the checks every code list must pass: codes and labels are
    /// unique, both parse back, serde uses the code, and the error lists
    /// every accepted value.
    macro_rules! check_code_list {
        ($ty:ident) => {{
            let mut codes = std::collections::BTreeSet::new();
            let mut labels = std::collections::BTreeSet::new();
            for value in $ty::ALL {
                assert!(codes.insert(value.as_str()), "{value:?}");
                assert!(labels.insert(value.label_zh()), "{value:?}");
                assert!(
                    value
                        .as_str()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{value:?}"
                );
                assert_eq!($ty::parse(value.as_str()), Ok(value));
                assert_eq!($ty::parse(value.label_zh()), Ok(value));
                assert_eq!(
                    $ty::parse(&format!(" {} ", value.as_str().to_uppercase())),
                    Ok(value)
                );
                assert_eq!(value.to_string(), value.as_str());
                let json = serde_json::to_string(&value).unwrap();
                assert_eq!(json, format!("\"{}\"", value.as_str()));
                assert_eq!(serde_json::from_str::<$ty>(&json).unwrap(), value);
                let label = serde_json::to_string(value.label_zh()).unwrap();
                assert_eq!(serde_json::from_str::<$ty>(&label).unwrap(), value);
            }
            let message = $ty::parse("nonsense").unwrap_err().to_string();
            for value in $ty::ALL {
                assert!(message.contains(value.as_str()), "{message}");
                assert!(message.contains(value.label_zh()), "{message}");
            }
            assert!(message.ends_with("not \"nonsense\""), "{message}");
            let long = "x".repeat(1000);
            let message = $ty::parse(&long).unwrap_err().to_string();
            assert!(!message.contains(&"x".repeat(33)), "{message}");

            use utoipa::PartialSchema;
            let schema = serde_json::to_value($ty::schema()).unwrap();
            let listed: Vec<String> = schema["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            let expected: Vec<String> = $ty::ALL.iter().map(|v| v.as_str().to_owned()).collect();
            assert_eq!(listed, expected);
        }};
    }

    #[test]
    fn every_code_list_is_consistent() {
        check_code_list!(ClientStatus);
        check_code_list!(ContractType);
        check_code_list!(BillingCycle);
        check_code_list!(ContractStatus);
        check_code_list!(InteractionKind);
        check_code_list!(CustodyKind);
        check_code_list!(FilingStatus);
        check_code_list!(TaxKind);
        check_code_list!(LeadStage);
        check_code_list!(DocumentKind);
    }

    #[test]
    fn codes_and_labels_as_specified() {
        assert_eq!(ClientStatus::InService.as_str(), "in_service");
        assert_eq!(ClientStatus::InService.label_zh(), "服务中");
        assert_eq!(InteractionKind::WeChat.as_str(), "wechat");
        assert_eq!(CustodyKind::TaxUkey.as_str(), "tax_ukey");
        assert_eq!(CustodyKind::TaxUkey.label_zh(), "税务UKey");
        assert_eq!(BillingCycle::OneOff.as_str(), "one_off");
        assert_eq!(TaxKind::CitAnnual.label_zh(), "企业所得税汇算清缴");
        assert_eq!(DocumentKind::IdCopy.as_str(), "id_copy");
        assert_eq!(
            ContractType::parse("代理记账"),
            Ok(ContractType::Bookkeeping)
        );
        assert_eq!(LeadStage::ALL.len(), 5);
    }

    #[test]
    fn error_message_reads_well() {
        assert_eq!(
            BillingCycle::parse("weekly").unwrap_err().to_string(),
            "billing cycle must be one of \"monthly\" (按月), \"quarterly\" (按季), \
             \"yearly\" (按年), \"one_off\" (一次性), not \"weekly\""
        );
    }

    #[test]
    fn client_status_moves() {
        use ClientStatus::*;
        let allowed = [
            (Lead, Signed),
            (Lead, Churned),
            (Signed, InService),
            (Signed, Churned),
            (InService, Churned),
            (Churned, Signed),
        ];
        for from in ClientStatus::ALL {
            for to in ClientStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn billing_cycle_months() {
        assert_eq!(BillingCycle::Monthly.months(), Some(1));
        assert_eq!(BillingCycle::Quarterly.months(), Some(3));
        assert_eq!(BillingCycle::Yearly.months(), Some(12));
        assert_eq!(BillingCycle::OneOff.months(), None);
    }

    #[test]
    fn filing_becomes_overdue_the_day_after_it_is_due() {
        let due = Date::new(2026, 1, 20).unwrap();
        let on_due = due;
        let after = Date::new(2026, 1, 21).unwrap();
        let before = Date::new(2026, 1, 2).unwrap();
        use FilingStatus::*;
        for (status, today, expected) in [
            (Todo, before, Todo),
            (Todo, on_due, Todo),
            (Todo, after, Overdue),
            (InProgress, on_due, InProgress),
            (InProgress, after, Overdue),
            (Filed, after, Filed),
            (Filed, before, Filed),
            (Overdue, after, Overdue),
            (Overdue, before, Todo),
        ] {
            assert_eq!(status.effective(due, today), expected, "{status:?} {today}");
        }
    }
}
