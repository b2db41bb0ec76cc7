//! Normalisers: phones to E.164, emails to a match key, names folded for comparison. Each keeps the
//! raw value; what is stored is never rewritten, only what is compared.

pub mod email;
pub mod name;
pub mod phone;

pub use email::{EmailKey, email, is_free_mail};
pub use name::*;
pub use phone::{PhoneKey, Region, contact_phone, country_region, phone, phone_canonical, region};
