//! SMS encoding facts (GSM 03.38 alphabet, UCS-2, part counting) shared by the BulkSMS emulator and the
//! send planner. PLACEHOLDER: being written.
