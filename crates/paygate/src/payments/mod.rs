//! Payments: creation (pending at once), asynchronous processing, reading.

pub mod service;
pub mod writes;

use paygate_core::{Card, Vpa};

/// How a payment is made, validated.
#[derive(Clone, Debug)]
pub enum Instrument {
    Upi(Vpa),
    Card(Card),
}

/// A validated payment request.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub order_id: String,
    pub instrument: Instrument,
}
