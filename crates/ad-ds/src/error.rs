//! Errors as AD gives them: an LDAP result code plus AD's diagnostic text, which starts with
//! the Win32 error code in 8 hex digits (`0000052D: ...`). Clients and the writeback engine
//! key on that leading code and on the `data NNN` of bind failures, so those are exact; the
//! DSID in the middle varies with the Windows build and is Windows Server 2016's here.

use std::fmt;

/// LDAP result codes (RFC 4511) that AD answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultCode {
    Success = 0,
    OperationsError = 1,
    ProtocolError = 2,
    SizeLimitExceeded = 4,
    CompareFalse = 5,
    CompareTrue = 6,
    AuthMethodNotSupported = 7,
    StrongerAuthRequired = 8,
    UnavailableCriticalExtension = 12,
    ConfidentialityRequired = 13,
    NoSuchAttribute = 16,
    UndefinedAttributeType = 17,
    ConstraintViolation = 19,
    AttributeOrValueExists = 20,
    InvalidAttributeSyntax = 21,
    NoSuchObject = 32,
    InvalidDnSyntax = 34,
    InvalidCredentials = 49,
    InsufficientAccessRights = 50,
    Busy = 51,
    UnwillingToPerform = 53,
    NamingViolation = 64,
    ObjectClassViolation = 65,
    NotAllowedOnNonLeaf = 66,
    NotAllowedOnRdn = 67,
    EntryAlreadyExists = 68,
    Other = 80,
}

impl ResultCode {
    /// The name RFC 4511 gives the code (`invalidCredentials`), as clients print it.
    pub fn name(self) -> &'static str {
        use ResultCode::*;
        match self {
            Success => "success",
            OperationsError => "operationsError",
            ProtocolError => "protocolError",
            SizeLimitExceeded => "sizeLimitExceeded",
            CompareFalse => "compareFalse",
            CompareTrue => "compareTrue",
            AuthMethodNotSupported => "authMethodNotSupported",
            StrongerAuthRequired => "strongerAuthRequired",
            UnavailableCriticalExtension => "unavailableCriticalExtension",
            ConfidentialityRequired => "confidentialityRequired",
            NoSuchAttribute => "noSuchAttribute",
            UndefinedAttributeType => "undefinedAttributeType",
            ConstraintViolation => "constraintViolation",
            AttributeOrValueExists => "attributeOrValueExists",
            InvalidAttributeSyntax => "invalidAttributeSyntax",
            NoSuchObject => "noSuchObject",
            InvalidDnSyntax => "invalidDNSyntax",
            InvalidCredentials => "invalidCredentials",
            InsufficientAccessRights => "insufficientAccessRights",
            Busy => "busy",
            UnwillingToPerform => "unwillingToPerform",
            NamingViolation => "namingViolation",
            ObjectClassViolation => "objectClassViolation",
            NotAllowedOnNonLeaf => "notAllowedOnNonLeaf",
            NotAllowedOnRdn => "notAllowedOnRDN",
            EntryAlreadyExists => "entryAlreadyExists",
            Other => "other",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdError {
    pub code: ResultCode,
    /// The matchedDN of the LDAP result (set for noSuchObject).
    pub matched: String,
    /// AD's diagnostic message, Win32 code first.
    pub message: String,
}

impl fmt::Display for AdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code.name(), self.code as u32, self.message.trim_end())
    }
}

impl std::error::Error for AdError {}

pub type AdResult<T> = Result<T, AdError>;

impl AdError {
    pub fn new(code: ResultCode, message: impl Into<String>) -> AdError {
        AdError { code, matched: String::new(), message: message.into() }
    }

    /// A failed simple bind: `data` is AD's sub-code (52e, 533, 775, ...).
    pub fn bind(data: &str) -> AdError {
        AdError::new(
            ResultCode::InvalidCredentials,
            format!("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {data}, v4563"),
        )
    }

    pub fn no_such_object(best_match: &str) -> AdError {
        AdError {
            code: ResultCode::NoSuchObject,
            matched: best_match.to_string(),
            message: format!("0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'{best_match}'\n"),
        }
    }

    pub fn invalid_dn(dn: &str) -> AdError {
        AdError::new(
            ResultCode::InvalidDnSyntax,
            format!("0000208F: NameErr: DSID-03100225, problem 2006 (BAD_NAME_SYNTAX), data 8350, best match of:\n\t'{dn}'\n"),
        )
    }

    pub fn must_bind() -> AdError {
        AdError::new(
            ResultCode::OperationsError,
            "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563",
        )
    }

    pub fn already_exists() -> AdError {
        AdError::new(ResultCode::EntryAlreadyExists, "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0\n")
    }

    /// A write the principal holds no right for.
    pub fn no_write_access() -> AdError {
        AdError::new(ResultCode::InsufficientAccessRights, "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n")
    }

    /// A reset or other control-access operation without the extended right.
    pub fn no_control_access() -> AdError {
        AdError::new(ResultCode::InsufficientAccessRights, "00000005: SecErr: DSID-031A11B9, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n")
    }

    /// A password change the Change Password right does not allow ("User cannot change
    /// password"): constraintViolation, not insufficientAccessRights — Samba 4.17 answers so,
    /// and its ACL module says Windows does too. The text is Win32's access denied (5).
    pub fn change_denied() -> AdError {
        AdError::new(ResultCode::ConstraintViolation, "00000005: SecErr: DSID-031A11E5, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n")
    }

    pub fn non_leaf() -> AdError {
        AdError::new(ResultCode::NotAllowedOnNonLeaf, "0000208C: UpdErr: DSID-03100B1C, problem 6003 (CANT_ON_NON_LEAF), data 0\n")
    }

    pub fn undefined_attribute(name: &str) -> AdError {
        AdError::new(
            ResultCode::UndefinedAttributeType,
            format!("00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, data 0, v4563 ({name})"),
        )
    }

    /// AtrErr family: `problem` is AD's problem name, e.g. `1005 (CONSTRAINT_ATT_TYPE)`.
    pub fn attr(code: ResultCode, win32: u32, problem: &str, attr: &str) -> AdError {
        AdError::new(
            code,
            format!(
                "{win32:08X}: AtrErr: DSID-03151904, #1:\n\t0: {win32:08X}: DSID-03151904, problem {problem}, data 0, Att 0 ({attr})\n"
            ),
        )
    }

    pub fn constraint(attr: &str) -> AdError {
        AdError::attr(ResultCode::ConstraintViolation, 0x2082, "1005 (CONSTRAINT_ATT_TYPE)", attr)
    }

    pub fn system_only(attr: &str) -> AdError {
        AdError::attr(ResultCode::ConstraintViolation, 0x20B1, "1005 (CONSTRAINT_ATT_TYPE)", attr)
    }

    pub fn value_exists(attr: &str) -> AdError {
        AdError::attr(ResultCode::AttributeOrValueExists, 0x2083, "1006 (ATT_OR_VALUE_EXISTS)", attr)
    }

    pub fn no_such_attribute(attr: &str) -> AdError {
        AdError::attr(ResultCode::NoSuchAttribute, 0x2085, "1001 (NO_ATTRIBUTE_OR_VAL)", attr)
    }

    pub fn bad_syntax(attr: &str) -> AdError {
        AdError::attr(ResultCode::InvalidAttributeSyntax, 0x207D, "1001 (INVALID_ATT_SYNTAX)", attr)
    }

    pub fn object_class(why: &str) -> AdError {
        AdError::new(
            ResultCode::ObjectClassViolation,
            format!("00002014: UpdErr: DSID-030F1064, problem 6002 (OBJ_CLASS_VIOLATION), data 0 ({why})\n"),
        )
    }

    pub fn unwilling(win32: u32, why: &str) -> AdError {
        AdError::new(
            ResultCode::UnwillingToPerform,
            format!("{win32:08X}: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0{why}\n"),
        )
    }

    /// A refused unicodePwd write, in Windows' form (`Att 9005a (unicodePwd)`): 0x56 wrong
    /// old password, 0x52D policy, 0x775 locked out. Windows names no reason; the lab adds
    /// one line saying which rule refused (Samba's wording), marked as the lab's.
    pub fn password_attr(win32: u32, reason: Option<&str>) -> AdError {
        let mut m = format!(
            "{win32:08X}: AtrErr: DSID-03190F80, #1:\n\t0: {win32:08X}: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"
        );
        if let Some(r) = reason {
            m.push_str(&format!("\t(lab: check_password_restrictions: {r})\n"));
        }
        AdError::new(ResultCode::ConstraintViolation, m)
    }

    pub fn password_policy(r: &crate::policy::Refusal) -> AdError {
        AdError::password_attr(0x52D, Some(&r.reason()))
    }

    pub fn unavailable_critical_extension(oid: &str) -> AdError {
        AdError::new(
            ResultCode::UnavailableCriticalExtension,
            format!("00002040: SvcErr: DSID-031401E7, problem 5010 (UNAVAIL_EXTENSION), data 0 ({oid})\n"),
        )
    }
}
