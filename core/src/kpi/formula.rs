//! Derived KPIs: a small arithmetic language over other figures (`100 * orders / visitors`).
//!
//! Hand-written rather than a crate: four operators, parentheses, numbers and names is a
//! 100-line recursive-descent parser, and it must answer "no value" (shown as "—") for a
//! division by zero or a missing input, which general expression crates turn into NaN or inf.

use std::fmt;

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    /// A literal number.
    Number(f64),
    /// Another KPI's key or a source (`orders`, `commerce.revenue`, `visitors`).
    Name(String),
    /// `-x`.
    Negate(Box<Formula>),
    /// `a + b`, `a - b`, `a * b`, `a / b`.
    Binary(Box<Formula>, Op, Box<Formula>),
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// Why a formula could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("formula `{formula}`: {reason}")]
pub struct FormulaError {
    /// The formula as written.
    pub formula: String,
    /// What is wrong, in words.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Name(String),
    Op(char),
    Open,
    Close,
}

fn tokens(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '+' | '-' | '*' | '/' => {
                out.push(Token::Op(c));
                chars.next();
            }
            '(' => {
                out.push(Token::Open);
                chars.next();
            }
            ')' => {
                out.push(Token::Close);
                chars.next();
            }
            '0'..='9' | '.' => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let text = &s[i..end];
                let n: f64 = text
                    .parse()
                    .map_err(|_| format!("`{text}` is not a number"))?;
                out.push(Token::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Name(s[i..end].to_ascii_lowercase()));
            }
            other => {
                return Err(format!(
                    "`{other}` is not allowed; use numbers, names, + - * / and parentheses"
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn sum(&mut self) -> Result<Formula, String> {
        let mut left = self.product()?;
        while let Some(Token::Op(c @ ('+' | '-'))) = self.peek().cloned() {
            self.at += 1;
            let right = self.product()?;
            let op = if c == '+' { Op::Add } else { Op::Sub };
            left = Formula::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Formula, String> {
        let mut left = self.unary()?;
        while let Some(Token::Op(c @ ('*' | '/'))) = self.peek().cloned() {
            self.at += 1;
            let right = self.unary()?;
            let op = if c == '*' { Op::Mul } else { Op::Div };
            left = Formula::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Formula, String> {
        if let Some(Token::Op('-')) = self.peek() {
            self.at += 1;
            return Ok(Formula::Negate(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Formula, String> {
        let token = self.peek().cloned();
        self.at += 1;
        match token {
            Some(Token::Num(n)) => Ok(Formula::Number(n)),
            Some(Token::Name(n)) => Ok(Formula::Name(n)),
            Some(Token::Open) => {
                self.depth += 1;
                if self.depth > 32 {
                    return Err("too deeply nested".into());
                }
                let inner = self.sum()?;
                self.depth -= 1;
                match self.peek() {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err("a `(` is not closed".into()),
                }
            }
            Some(Token::Close) => Err("a `)` closes nothing".into()),
            Some(Token::Op(c)) => Err(format!("`{c}` needs a value before it")),
            None => Err("it ends where a value should be".into()),
        }
    }
}

impl Formula {
    /// Parses `text` (at most 200 characters).
    pub fn parse(text: &str) -> Result<Self, FormulaError> {
        let err = |reason: String| FormulaError {
            formula: text.to_owned(),
            reason,
        };
        if text.len() > 200 {
            return Err(err("is longer than 200 characters".into()));
        }
        let tokens = tokens(text).map_err(err)?;
        if tokens.is_empty() {
            return Err(err("is empty".into()));
        }
        let mut p = Parser {
            tokens,
            at: 0,
            depth: 0,
        };
        let f = p.sum().map_err(err)?;
        if p.at < p.tokens.len() {
            return Err(err("has something left over after a complete value".into()));
        }
        Ok(f)
    }

    /// The names it reads, in order of first use.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Formula::Number(_) => {}
            Formula::Name(n) => {
                if !out.contains(&n.as_str()) {
                    out.push(n);
                }
            }
            Formula::Negate(x) => x.collect(out),
            Formula::Binary(a, _, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// Its value with `value` giving each name's; `None` when an input has no value or a
    /// divisor is zero (shown as "—", never NaN or infinity).
    pub fn eval(&self, value: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        let v = match self {
            Formula::Number(n) => *n,
            Formula::Name(n) => value(n)?,
            Formula::Negate(x) => -x.eval(value)?,
            Formula::Binary(a, op, b) => {
                let (a, b) = (a.eval(value)?, b.eval(value)?);
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => {
                        if b == 0.0 {
                            return None;
                        }
                        a / b
                    }
                }
            }
        };
        v.is_finite().then_some(v)
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Formula::Number(n) => write!(f, "{n}"),
            Formula::Name(n) => f.write_str(n),
            Formula::Negate(x) => write!(f, "-{x}"),
            Formula::Binary(a, op, b) => {
                let op = match op {
                    Op::Add => "+",
                    Op::Sub => "-",
                    Op::Mul => "*",
                    Op::Div => "/",
                };
                write!(f, "({a} {op} {b})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn values(name: &str) -> Option<f64> {
        match name {
            "orders" => Some(30.0),
            "visitors" => Some(1200.0),
            "zero" => Some(0.0),
            _ => None,
        }
    }

    #[test]
    fn precedence_and_parentheses() {
        let f = Formula::parse("100 * orders / visitors").unwrap();
        assert_eq!(f.eval(&values), Some(2.5));
        assert_eq!(
            Formula::parse("1 + 2 * 3").unwrap().eval(&values),
            Some(7.0)
        );
        assert_eq!(
            Formula::parse("(1 + 2) * 3").unwrap().eval(&values),
            Some(9.0)
        );
        assert_eq!(
            Formula::parse("-orders + 40").unwrap().eval(&values),
            Some(10.0)
        );
        assert_eq!(f.names(), vec!["orders", "visitors"]);
    }

    #[test]
    fn a_zero_divisor_or_a_missing_input_is_no_value() {
        assert_eq!(Formula::parse("orders / zero").unwrap().eval(&values), None);
        assert_eq!(
            Formula::parse("orders / (orders - 30)")
                .unwrap()
                .eval(&values),
            None
        );
        assert_eq!(
            Formula::parse("orders + unknown").unwrap().eval(&values),
            None
        );
    }

    #[test]
    fn bad_formulas_say_what_is_wrong() {
        for (bad, why) in [
            ("", "empty"),
            ("orders /", "ends where a value"),
            ("(orders", "not closed"),
            ("orders)", "left over"),
            ("orders % 2", "not allowed"),
            ("1..2", "not a number"),
        ] {
            let e = Formula::parse(bad).unwrap_err();
            assert!(e.reason.contains(why), "{bad}: {e}");
        }
        assert!(Formula::parse(&"(".repeat(40)).is_err());
    }
}
