//! Hostile components that no guest crate can produce: made by code, byte by byte, so that the
//! tests and the reliability suite send exactly the bytes a hostile tenant could upload.

use wasm_encoder::{
    CodeSection, Component, ConstExpr, Function, FunctionSection, GlobalSection, GlobalType,
    InstanceSection, Instruction, Module, ModuleArg, ModuleSection, StartSection, TypeSection,
    ValType,
};

/// Locals of the generated function: every one stays live to the end, which gives the
/// register allocator as much to do as the format allows at this size.
const LOCALS: u32 = 4_000;

/// A component whose only core module holds one function: `bytes` bytes of straight-line
/// arithmetic over thousands of live locals (plus about 70 KB to set them up and sum them).
/// Valid WebAssembly that cranelift needs minutes per megabyte to compile (1 MiB: 99 s on this
/// project's machine) and hundreds of megabytes of memory for (1 MiB: more than 256 MiB), and no
/// parser (it exports nothing).
pub fn slow_to_compile(bytes: usize) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    let mut functions = FunctionSection::new();
    functions.function(0);

    // The inputs come from a mutable global and the result goes back to it, so the compiler can
    // neither fold the arithmetic into constants nor drop it as dead.
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I64,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i64_const(7),
    );
    let mut body = Function::new([(LOCALS, ValType::I64)]);
    for local in 0..LOCALS {
        body.instruction(&Instruction::GlobalGet(0))
            .instruction(&Instruction::I64Const(i64::from(local)))
            .instruction(&Instruction::I64Add)
            .instruction(&Instruction::LocalSet(local));
    }
    let mut written = 0;
    let mut step: u32 = 0;
    while written < bytes {
        // local[c] = local[a] * local[b] + local[c], indices spread over all locals.
        let a = step.wrapping_mul(2_654_435_761) % LOCALS;
        let b = step.wrapping_mul(40_503) % LOCALS;
        let c = step % LOCALS;
        body.instruction(&Instruction::LocalGet(a))
            .instruction(&Instruction::LocalGet(b))
            .instruction(&Instruction::I64Mul)
            .instruction(&Instruction::LocalGet(c))
            .instruction(&Instruction::I64Add)
            .instruction(&Instruction::LocalSet(c));
        written += 14;
        step += 1;
    }
    for local in 1..LOCALS {
        body.instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::LocalGet(local))
            .instruction(&Instruction::I64Add)
            .instruction(&Instruction::LocalSet(0));
    }
    body.instruction(&Instruction::LocalGet(0))
        .instruction(&Instruction::GlobalSet(0))
        .instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&body);

    let mut module = Module::new();
    // The function is the module's start function and the component instantiates the module:
    // the engine compiles only what can run.
    module
        .section(&types)
        .section(&functions)
        .section(&globals)
        .section(&StartSection { function_index: 0 })
        .section(&code);
    let mut instances = InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    let mut component = Component::new();
    component
        .section(&ModuleSection(&module))
        .section(&instances);
    component.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_has_about_the_size_asked_for() {
        let component = slow_to_compile(100_000);
        assert!(component.starts_with(b"\0asm"));
        assert!(
            (100_000..200_000).contains(&component.len()),
            "{}",
            component.len()
        );
    }
}
