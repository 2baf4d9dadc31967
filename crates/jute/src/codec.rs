//! Jute's binary encoding: big-endian ints and longs, one-byte booleans, length-prefixed
//! buffers and strings (length -1 = null), count-prefixed vectors (count -1 = null).

use bytes::BufMut;

/// Why a byte sequence is not a valid jute record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("unexpected end of input: needed {needed} more bytes at offset {offset}")]
    UnexpectedEof { offset: usize, needed: usize },
    #[error("invalid length {length} at offset {offset}")]
    InvalidLength { offset: usize, length: i32 },
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("{count} trailing bytes after the record")]
    TrailingBytes { count: usize },
    #[error("invalid value {value} for {what}")]
    InvalidValue { what: &'static str, value: i64 },
}

pub type Result<T> = std::result::Result<T, JuteError>;

/// A cursor over an encoded record. Never panics: every read checks the remaining length.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Errors unless every byte has been consumed.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(JuteError::TrailingBytes { count }),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(JuteError::UnexpectedEof {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn read_i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix; -1 means null. Lengths beyond the input are rejected before allocating.
    fn read_len(&mut self) -> Result<Option<usize>> {
        let offset = self.pos;
        let length = self.read_i32()?;
        match length {
            -1 => Ok(None),
            n if n < 0 => Err(JuteError::InvalidLength { offset, length }),
            n => Ok(Some(n as usize)),
        }
    }

    pub fn read_buffer_ref(&mut self) -> Result<Option<&'a [u8]>> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }

    pub fn read_str_ref(&mut self) -> Result<Option<&'a str>> {
        let offset = self.pos;
        match self.read_buffer_ref()? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| JuteError::InvalidUtf8 { offset }),
        }
    }

    /// A vector count; each element needs at least one byte, which bounds the count by the input.
    pub fn read_count(&mut self) -> Result<Option<usize>> {
        let offset = self.pos;
        match self.read_len()? {
            Some(n) if n > self.remaining() => Err(JuteError::InvalidLength {
                offset,
                length: n as i32,
            }),
            other => Ok(other),
        }
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn read(r: &mut Reader<'_>) -> Result<Self>;
    fn write<B: BufMut>(&self, w: &mut B);

    /// Moves past a value, checking it as [`Jute::read`] does but without building it (a
    /// follower finds where a proposal's txn ends this way, then decodes it once).
    fn skip(r: &mut Reader<'_>) -> Result<()> {
        Self::read(r).map(drop)
    }

    /// Decodes a whole buffer, rejecting trailing bytes.
    fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let value = Self::read(&mut r)?;
        r.finish()?;
        Ok(value)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

impl Jute for i32 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i32()
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        w.put_i32(*self)
    }
}

impl Jute for i64 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i64()
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        w.put_i64(*self)
    }
}

impl Jute for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_bool()
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        w.put_u8(*self as u8)
    }
}

/// A ustring; null is read as the empty string (ZooKeeper rejects both as paths).
impl Jute for String {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(r.read_str_ref()?.unwrap_or("").to_owned())
    }
    fn skip(r: &mut Reader<'_>) -> Result<()> {
        r.read_str_ref().map(drop)
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        write_str(w, self)
    }
}

/// A ustring where null is meaningful (e.g. ReconfigRequest's unset fields).
impl Jute for Option<String> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(r.read_str_ref()?.map(str::to_owned))
    }
    fn skip(r: &mut Reader<'_>) -> Result<()> {
        r.read_str_ref().map(drop)
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        match self {
            Some(s) => write_str(w, s),
            None => w.put_i32(-1),
        }
    }
}

/// A buffer where null is meaningful: znode data may be null and reads back as null.
impl Jute for Option<Vec<u8>> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(r.read_buffer_ref()?.map(<[u8]>::to_vec))
    }
    fn skip(r: &mut Reader<'_>) -> Result<()> {
        r.read_buffer_ref().map(drop)
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        write_opt_buffer(w, self.as_deref())
    }
}

impl<T: Jute> Jute for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let n = r.read_count()?.unwrap_or(0);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(T::read(r)?);
        }
        Ok(out)
    }
    fn skip(r: &mut Reader<'_>) -> Result<()> {
        let n = r.read_count()?.unwrap_or(0);
        for _ in 0..n {
            T::skip(r)?;
        }
        Ok(())
    }
    fn write<B: BufMut>(&self, w: &mut B) {
        w.put_i32(self.len() as i32);
        for item in self {
            item.write(w);
        }
    }
}

pub fn write_str<B: BufMut>(w: &mut B, s: &str) {
    w.put_i32(s.len() as i32);
    w.put_slice(s.as_bytes());
}

pub fn write_buffer<B: BufMut>(w: &mut B, b: &[u8]) {
    w.put_i32(b.len() as i32);
    w.put_slice(b);
}

pub fn write_opt_buffer<B: BufMut>(w: &mut B, b: Option<&[u8]>) {
    match b {
        Some(b) => write_buffer(w, b),
        None => w.put_i32(-1),
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::Jute for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::Reader<'_>) -> $crate::Result<Self> {
                Ok($name { $($field: <$ty as $crate::Jute>::read(r)?),* })
            }
            #[allow(unused_variables)]
            fn skip(r: &mut $crate::Reader<'_>) -> $crate::Result<()> {
                $(<$ty as $crate::Jute>::skip(r)?;)*
                Ok(())
            }
            #[allow(unused_variables)]
            fn write<B: bytes::BufMut>(&self, w: &mut B) {
                $($crate::Jute::write(&self.$field, w);)*
            }
        }
    };
}
