//! Mark prices: every live trade of an asset marked at once.

use super::Kernel;
use crate::error::InputError;

impl Kernel {
    /// Marks every live trade of `asset` at `price`; returns how many it touched.
    pub fn mark_price(&mut self, asset: &str, price: f64) -> Result<usize, InputError> {
        crate::error::check_number("price", price, 0.0, true)?;
        // Taken out while marking so `touched` can borrow the kernel; put back below.
        let Some(slots) = self.asset_index.get_mut(asset).map(std::mem::take) else {
            return Ok(0);
        };
        for &j in &slots {
            let i = j as usize;
            let before = self.slots[i].exposure();
            let s = &mut self.slots[i];
            if s.last_mark_price == price {
                continue;
            }
            s.last_mark_price = price;
            s.refresh_unrealized();
            self.touched(i, before, false);
        }
        let n = slots.len();
        if let Some(list) = self.asset_index.get_mut(asset) {
            *list = slots;
        }
        Ok(n)
    }
}
