//! A solver-neutral mixed-integer program: columns with two objective rows (the first,
//! lexicographic goal and the second, selectable one) and ranged constraint rows.

/// One variable.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Integer (binary when `0..=1`) or continuous.
    pub integer: bool,
    /// Coefficient in the first goal (maximised).
    pub primary: f64,
    /// Coefficient in the second goal (minimised).
    pub secondary: f64,
}

/// One constraint `lo <= sum(coef * col) <= hi`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Lower bound (may be `-inf`).
    pub lo: f64,
    /// Upper bound (may be `+inf`).
    pub hi: f64,
    /// Terms.
    pub terms: Vec<(usize, f64)>,
}

/// A program.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    /// Columns.
    pub cols: Vec<Col>,
    /// Rows.
    pub rows: Vec<Row>,
}

impl Program {
    /// Adds an integer column in `0..=hi`.
    pub fn int(&mut self, hi: f64) -> usize {
        self.col(0.0, hi, true)
    }

    /// Adds a column.
    pub fn col(&mut self, lo: f64, hi: f64, integer: bool) -> usize {
        self.cols.push(Col {
            lo,
            hi,
            integer,
            primary: 0.0,
            secondary: 0.0,
        });
        self.cols.len() - 1
    }

    /// Adds `sum <= hi`.
    pub fn le(&mut self, terms: Vec<(usize, f64)>, hi: f64) {
        self.rows.push(Row {
            lo: f64::NEG_INFINITY,
            hi,
            terms,
        });
    }

    /// Adds `sum >= lo`.
    pub fn ge(&mut self, terms: Vec<(usize, f64)>, lo: f64) {
        self.rows.push(Row {
            lo,
            hi: f64::INFINITY,
            terms,
        });
    }

    /// Adds `sum == v`.
    pub fn eq(&mut self, terms: Vec<(usize, f64)>, v: f64) {
        self.rows.push(Row {
            lo: v,
            hi: v,
            terms,
        });
    }

    /// Value of the first goal at `x`.
    pub fn primary_value(&self, x: &[f64]) -> f64 {
        self.cols.iter().zip(x).map(|(c, v)| c.primary * v).sum()
    }

    /// Value of the second goal at `x`.
    pub fn secondary_value(&self, x: &[f64]) -> f64 {
        self.cols.iter().zip(x).map(|(c, v)| c.secondary * v).sum()
    }

    /// Whether `x` satisfies every bound and row within `tol`.
    pub fn feasible(&self, x: &[f64], tol: f64) -> bool {
        x.len() == self.cols.len()
            && self
                .cols
                .iter()
                .zip(x)
                .all(|(c, v)| *v >= c.lo - tol && *v <= c.hi + tol)
            && self.rows.iter().all(|r| {
                let s: f64 = r.terms.iter().map(|(i, a)| a * x[*i]).sum();
                s >= r.lo - tol && s <= r.hi + tol
            })
    }
}
