//! The only `unsafe` of the binding: a `bytes` object filled from several buffers with one
//! copy (pyo3's safe `PyBytes::new_with` zero-fills first: a second pass over every received
//! byte).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A new `bytes` object holding the concatenation of `parts`.
#[allow(unsafe_code)]
pub(crate) fn bytes_joined<'py>(
    py: Python<'py>,
    parts: &[Vec<u8>],
) -> PyResult<Bound<'py, PyBytes>> {
    if let [one] = parts {
        return Ok(PyBytes::new(py, one));
    }
    let total: usize = parts.iter().map(Vec::len).sum();
    let len = ffi::Py_ssize_t::try_from(total)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("data too large"))?;
    // SAFETY (both blocks): with a NULL source, PyBytes_FromStringAndSize returns a new bytes object with
    // `len` uninitialised bytes (or NULL with an exception set, turned into Err here); nothing
    // else references it until it is returned, so its buffer may be written. The parts fill
    // exactly `total` bytes of it, in bounds, from memory that does not overlap it.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(std::ptr::null(), len))?
    }
    .cast_into::<PyBytes>()?;
    // SAFETY: see above; PyBytes_AsString of a bytes object never fails.
    unsafe {
        let mut dst = ffi::PyBytes_AsString(obj.as_ptr()).cast::<u8>();
        for p in parts {
            std::ptr::copy_nonoverlapping(p.as_ptr(), dst, p.len());
            dst = dst.add(p.len());
        }
    }
    Ok(obj)
}
